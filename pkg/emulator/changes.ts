import fs from "node:fs";
import net from "node:net";
import { isPciAddress } from "../host/pci-address.js";
import {
  kernelSocketPath,
  lockKernel,
  readHostRecord,
  resolveHostRoot,
  servingKernelPid,
  unlockKernel,
} from "./host.js";
import type { DeviceSpec } from "./layout.js";
import { hostLayout } from "./layout.js";
import { EmulatedMachine } from "./machine.js";

/**
 * What happens to a host behind the driver's back, for the health cases: a PF's cable
 * unplugged or plugged (`link`), a PF's netdev set down or up (`admin`, as `ip link set`),
 * a VF removed (`remove-vf`, as `echo 1 > .../remove`), a VF moved to another driver
 * (`rebind`, as an administrator's driver_override, unbind and probe). A PF is named by its
 * netdev (`ens1f0`) or PCI address, a VF by its PCI address.
 */
export type HostChange =
  | { kind: "link"; pf: string; up: boolean }
  | { kind: "admin"; pf: string; up: boolean }
  | { kind: "remove-vf"; vf: string }
  | { kind: "rebind"; vf: string; driver: string };

/** A change the host cannot make (no such device, driver, or state), with the reason. */
export class HostChangeError extends Error {}

/** A host change as sent to the emulated kernel's socket, checked. */
export function parseHostChange(value: unknown): HostChange {
  const change = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const text = (key: string) => {
    const field = change[key];
    if (typeof field !== "string" || field === "") {
      throw new HostChangeError(`a ${String(change["kind"])} change needs a string ${key}`);
    }
    return field;
  };
  const flag = (key: string) => {
    const field = change[key];
    if (typeof field !== "boolean") {
      throw new HostChangeError(`a ${String(change["kind"])} change needs a boolean ${key}`);
    }
    return field;
  };
  switch (change["kind"]) {
    case "link":
    case "admin":
      return { kind: change["kind"], pf: text("pf"), up: flag("up") };
    case "remove-vf":
      return { kind: "remove-vf", vf: text("vf") };
    case "rebind":
      return { kind: "rebind", vf: text("vf"), driver: text("driver") };
    default:
      throw new HostChangeError(
        `unknown host change ${JSON.stringify(change["kind"])}: link, admin, remove-vf or rebind`,
      );
  }
}

/**
 * The changes a comma-separated flag value asks for: `ens1f0=down,ens1f1=up` for link and
 * admin, `0000:3b:02.1,0000:3b:02.3` for remove-vf, `0000:3b:02.1=vfio-pci` for rebind.
 */
export function parseChangeList(kind: HostChange["kind"], list: string): HostChange[] {
  return list
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item): HostChange => {
      const [name = "", value, ...rest] = item.split("=");
      const bad = (expected: string) =>
        new HostChangeError(`${JSON.stringify(item)}: expected ${expected}`);
      if (kind === "remove-vf") {
        if (value !== undefined || !isPciAddress(name)) throw bad("a VF's PCI address");
        return { kind, vf: name };
      }
      if (kind === "rebind") {
        if (!isPciAddress(name) || value === undefined || value === "" || rest.length > 0) {
          throw bad("<VF PCI address>=<driver>");
        }
        return { kind, vf: name, driver: value };
      }
      if (name === "" || (value !== "up" && value !== "down") || rest.length > 0) {
        throw bad("<PF netdev or PCI address>=up or =down");
      }
      return { kind, pf: name, up: value === "up" };
    });
}

/** Makes a change on the machine's tree; resolves to what was done, in words. */
export async function applyHostChange(
  machine: EmulatedMachine,
  change: HostChange,
): Promise<string> {
  const { tree } = machine;
  switch (change.kind) {
    case "link":
    case "admin": {
      const pf = pfNamed(machine, change.pf);
      const state = tree.linkOf(pf);
      if (change.kind === "link") {
        tree.setCablePlugged(pf, change.up);
        state.cablePlugged = change.up;
      } else {
        state.adminUp = change.up;
      }
      tree.writeLink(pf, state);
      const what =
        change.kind === "link"
          ? `cable ${change.up ? "plugged" : "unplugged"}`
          : `netdev set ${change.up ? "up" : "down"}`;
      const carrier = state.adminUp ? (state.cablePlugged ? "1" : "0") : "unreadable";
      const operstate = state.adminUp && state.cablePlugged ? "up" : "down";
      return `PF ${pf.netdev} (${pf.address}): ${what}; carrier ${carrier}, operstate ${operstate}`;
    }
    case "remove-vf": {
      const vf = vfAt(machine, change.vf);
      await machine.removeVf(vf);
      return `VF ${vf.address} removed (sriov_numvfs of ${vf.physfn!.address} unchanged)`;
    }
    case "rebind": {
      const vf = vfAt(machine, change.vf);
      if (!machine.layout.drivers.includes(change.driver)) {
        throw new HostChangeError(
          `no driver ${change.driver} on this host: ${machine.layout.drivers.join(", ")}`,
        );
      }
      const from = tree.driverOf(vf.address);
      await machine.rebind(vf, change.driver);
      return `VF ${vf.address} moved from ${from ?? "no driver"} to ${change.driver}`;
    }
  }
}

function pfNamed(machine: EmulatedMachine, name: string): DeviceSpec {
  const pf = machine.layout.fixedDevices.find(
    (device) => device.role === "pf" && (device.address === name || device.netdev === name),
  );
  if (pf === undefined) {
    throw new HostChangeError(`no PF ${name} on this host (name its netdev or PCI address)`);
  }
  if (!machine.tree.hasNetdev(pf)) {
    throw new HostChangeError(`PF ${name} has no netdev now: it is not bound to its driver`);
  }
  return pf;
}

function vfAt(machine: EmulatedMachine, address: string): DeviceSpec {
  const vf = machine.layout.byAddress.get(address);
  if (vf?.role !== "vf") throw new HostChangeError(`${address} is not a VF of this host`);
  if (!machine.tree.isPresent(address)) {
    throw new HostChangeError(`VF ${address} is not present (removed, or sriov_numvfs lower)`);
  }
  return vf;
}

/**
 * Makes a change on the emulated host at `root`, behind the driver's back; resolves to what
 * was done. When an emulated kernel serves the root, it makes the change (over its socket,
 * in order with the writes it answers); otherwise the change is made here, under the
 * kernel lock so no kernel starts meanwhile.
 */
export async function changeEmulatedHost(root: string, change: HostChange): Promise<string> {
  const resolved = resolveHostRoot(root);
  const pid = servingKernelPid(resolved);
  if (pid !== undefined) return askKernel(resolved, pid, change);
  const { profile, netdevs } = readHostRecord(resolved);
  lockKernel(resolved);
  try {
    return await applyHostChange(
      new EmulatedMachine(resolved, hostLayout(profile), netdevs),
      change,
    );
  } finally {
    unlockKernel(resolved);
  }
}

/** What the kernel's socket answers a change: one JSON line. */
export type ChangeReply = { done: string } | { error: string };

function askKernel(root: string, pid: number, change: HostChange): Promise<string> {
  const socket = kernelSocketPath(root);
  if (!fs.existsSync(socket)) {
    return Promise.reject(
      new HostChangeError(
        `the emulated kernel (pid ${pid}) serving ${root} takes no changes: it has no ${socket} (a root path too long for a unix socket, or an older emulator)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const connection = net.createConnection(socket);
    let answer = "";
    connection.setEncoding("utf8");
    connection.on("connect", () => connection.end(`${JSON.stringify(change)}\n`));
    connection.on("data", (chunk: string) => (answer += chunk));
    connection.on("error", (error) =>
      reject(new Error(`emulated kernel at ${socket}: ${error.message}`, { cause: error })),
    );
    connection.on("close", () => {
      let reply: ChangeReply;
      try {
        reply = JSON.parse(answer) as ChangeReply;
      } catch {
        reject(new Error(`emulated kernel at ${socket} answered ${JSON.stringify(answer)}`));
        return;
      }
      if ("error" in reply) reject(new HostChangeError(reply.error));
      else resolve(reply.done);
    });
  });
}
