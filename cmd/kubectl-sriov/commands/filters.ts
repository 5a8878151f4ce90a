import { buildFilterReports, formatFilterTable } from "../../../pkg/cluster-inventory/filters.js";
import { publishedDevicesByNode } from "../../../pkg/controller/slice-devices.js";
import type { KubeClient, KubeObject } from "../../../lib/kube/client.js";
import type { PluginOptions } from "../cli.js";
import { listAll } from "../list.js";
import { render } from "../output.js";
import { sriovResourceFiltersPath } from "../../../api/v1alpha1/group.js";
import { nodesPath, resourceSlicesPath } from "../../../lib/kube/api-paths.js";

/** `kubectl sriov filters [-n NAMESPACE]`. */
export async function runFilters(
  client: KubeClient,
  options: PluginOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const [filters, nodes, slices] = await Promise.all([
    listAll(client, sriovResourceFiltersPath(options.namespace)),
    listAll(client, nodesPath()),
    listAll(client, resourceSlicesPath(), { fieldSelector: `spec.driver=${options.driverName}` }),
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
