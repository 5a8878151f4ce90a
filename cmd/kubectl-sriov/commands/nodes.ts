import {
  buildNodeInventory,
  formatNodeInventoryTable,
} from "../../../pkg/cluster-inventory/nodes.js";
import { holdersByDevice } from "../../../pkg/cluster-inventory/claims.js";
import { publishedDevicesByNode } from "../../../pkg/controller/slice-devices.js";
import { KubeApiError, type KubeClient, type KubeObject } from "../../../lib/kube/client.js";
import type { PluginOptions } from "../cli.js";
import { listAll } from "../list.js";
import { render } from "../output.js";
import { resourceClaimsPath, resourceSlicesPath } from "../../../lib/kube/api-paths.js";

/** `kubectl sriov nodes [NODE]`. */
export async function runNodes(
  client: KubeClient,
  options: PluginOptions,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const [node] = options.args;
  const fieldSelector = [
    `spec.driver=${options.driverName}`,
    ...(node ? [`spec.nodeName=${node}`] : []),
  ];
  const [slices, claims] = await Promise.all([
    listAll(client, resourceSlicesPath(), { fieldSelector: fieldSelector.join(",") }),
    listAll(client, resourceClaimsPath()).catch((error: unknown) => {
      // Reading every namespace's claims needs more than reading slices: show the VFs anyway.
      if (!(error instanceof KubeApiError && error.status === 403)) throw error;
      err.write(`warning: cannot list resourceclaims (${error.message}): holders not shown\n`);
      return [];
    }),
  ]);
  const published = publishedDevicesByNode(slices as KubeObject[], options.driverName);
  const inventory = buildNodeInventory(
    published,
    holdersByDevice(claims, options.driverName),
    options.driverName,
    node,
  );
  if (
    node !== undefined &&
    inventory.nodes.length === 0 &&
    options.output !== "json" &&
    options.output !== "yaml"
  ) {
    err.write(`error: node "${node}" publishes no devices of ${options.driverName}\n`);
    return 1;
  }
  out.write(render(inventory, options.output, formatNodeInventoryTable));
  return 0;
}
