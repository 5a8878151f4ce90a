import { execFileSync } from "node:child_process";
import type { JsonObject } from "../../util/json.js";
import type { CniConfigList } from "../config.js";
import { CniError } from "../errors.js";
import type { CniRuntime } from "../invocation.js";

/**
 * What tests that run real CNI plugins in real network namespaces share: where Debian's
 * plugins are, `ip` and its JSON view of links, a runtime for a test's namespace, and the
 * small configurations they run. Each test file keeps its own link and namespace names.
 */
export const PLUGIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin"];

export interface IpLink {
  ifname: string;
  address: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Links of a network namespace by name (null: the test's own). */
function linksIn(netns: string | null): IpLink[] {
  const prefix = netns === null ? [] : ["-n", netns];
  return JSON.parse(ip(...prefix, "-j", "address", "show")) as IpLink[];
}

export function linkIn(netns: string | null, name: string): IpLink | undefined {
  return linksIn(netns).find((link) => link.ifname === name);
}

/** A pod's runtime arguments for the namespace at `netnsPath`. */
export function podRuntime(containerId: string, netnsPath: string): CniRuntime {
  return {
    containerId,
    netns: netnsPath,
    ifName: "net1",
    args: { K8S_POD_NAMESPACE: "ns", K8S_POD_NAME: "pod", K8S_POD_UID: "uid-1" },
  };
}

export const staticIpam = (address: string): JsonObject => ({
  type: "static",
  addresses: [{ address }],
});

export function configList(name: string, plugins: JsonObject[]): CniConfigList {
  return { cniVersion: "1.0.0", name, plugins };
}

/** The CniError a call fails with; anything else fails the test. */
export async function failure(promise: Promise<unknown>): Promise<CniError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CniError) return error;
    throw error;
  }
  throw new Error("expected a CniError");
}
