import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { JsonObject } from "../../util/json.js";
import type { CniConfigList } from "../config.js";
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

/** `ip` for undoing: what is already gone is fine. */
export function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // Already gone.
  }
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

/** What a test made, undone in reverse order after it: call `run` in afterEach. */
export class Cleanups {
  private readonly steps: (() => Promise<void> | void)[] = [];

  push(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }

  tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A named network namespace; deleting it destroys a veth end still inside, and its pair. */
  netns(name: string): void {
    ip("netns", "add", name);
    this.push(() => tryIp("netns", "delete", name));
  }
}
