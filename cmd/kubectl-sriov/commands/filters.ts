import { API_VERSION } from "../../../api/v1alpha1/group.js";
import { buildFilterReports, formatFilterTable } from "../../../pkg/cluster-inventory/filters.js";
import { publishedDevicesByNode } from "../../../pkg/controller/slice-devices.js";
import type { KubeClient, KubeObject } from "../../../lib/kube/client.js";
import type { PluginOptions } from "../cli.js";
import { listAll } from "../list.js";
import { render } from "../output.js";
import { SLICES } from "./nodes.js";

/** `kubectl sriov filters [-n NAMESPACE]`. */
export async function runFilters(
  client: KubeClient,
  options: PluginOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const scope =
    options.namespace === undefined ? "" : `/namespaces/${encodeURIComponent(options.namespace)}`;
  const [filters, nodes, slices] = await Promise.all([
    listAll(client, `/apis/${API_VERSION}${scope}/sriovresourcefilters`),
    listAll(client, "/api/v1/nodes"),
    listAll(client, SLICES, { fieldSelector: `spec.driver=${options.driverName}` }),
  ]);
  const report = buildFilterReports(
    filters,
    nodes,
    publishedDevicesByNode(slices as KubeObject[], options.driverName),
    options.driverName,
  );
  out.write(render(report, options.output, formatFilterTable));
  return 0;
}
