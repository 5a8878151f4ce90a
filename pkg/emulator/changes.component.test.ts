import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HostPaths } from "../host/paths.js";
import {
  HostChangeError,
  changeEmulatedHost,
  parseChangeList,
  parseHostChange,
} from "./changes.js";
import { buildEmulatedHost, kernelSocketPath } from "./host.js";
import { EmulatedKernel } from "./kernel.js";
import { builtinProfiles } from "./profiles.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function host() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-changes-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  const { inventory } = await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  const paths = new HostPaths({ root });
  /** A netdev's carrier, operstate and flags; carrier undefined when it cannot be read. */
  const link = (netdev: string) => {
    const file = (name: string) => path.join(paths.classNet, netdev, name);
    return {
      carrier: fs.existsSync(file("carrier"))
        ? fs.readFileSync(file("carrier"), "utf8")
        : undefined,
      operstate: fs.readFileSync(file("operstate"), "utf8"),
      flags: fs.readFileSync(file("flags"), "utf8"),
    };
  };
  const driverOf = (address: string) => {
    const driver = path.join(paths.pciDevice(address), "driver");
    return fs.existsSync(driver) ? path.basename(fs.readlinkSync(driver)) : undefined;
  };
  return { root, inventory, paths, link, driverOf };
}

async function serve(root: string, probeDurationMs = 0) {
  const logs: { level: string; message: string; fields: object }[] = [];
  const record = (level: string) => (fields: object, message: string) =>
    void logs.push({ level, message, fields });
  const logger = { debug: record("debug"), info: record("info"), warn: record("warn") };
  const kernel = new EmulatedKernel({ root, bindDelayMs: 2, probeDurationMs, logger });
  await kernel.start();
  cleanups.push(() => kernel.stop());
  return Object.assign(kernel, { logs });
}

// The igb PF on a real kernel (test/real-kernel/link.test.ts) read these.
const UP = { carrier: "1\n", operstate: "up\n", flags: "0x1003\n" };
const NO_CARRIER = { carrier: "0\n", operstate: "down\n", flags: "0x1003\n" };
const ADMIN_DOWN = { carrier: undefined, operstate: "down\n", flags: "0x1002\n" };

describe("netdev link files", () => {
  it("boot with PFs up with a link, VFs down and host-used VFs up", async () => {
    const { link } = await host();
    expect(link("ens1f0")).toEqual(UP);
    expect(link("ens1f0v3")).toEqual(ADMIN_DOWN);
    expect(link("ens1f1v7")).toEqual(UP);
  });
});

describe("changeEmulatedHost without a serving kernel", () => {
  it("unplugs and plugs a PF's cable and sets its netdev down and up, as the kernel shows them", async () => {
    const { root, link } = await host();
    expect(await changeEmulatedHost(root, { kind: "link", pf: "ens1f0", up: false })).toBe(
      "PF ens1f0 (0000:3b:00.0): cable unplugged; carrier 0, operstate down",
    );
    expect(link("ens1f0")).toEqual(NO_CARRIER);
    expect(link("ens1f1")).toEqual(UP);
    await changeEmulatedHost(root, { kind: "admin", pf: "0000:3b:00.0", up: false });
    expect(link("ens1f0")).toEqual(ADMIN_DOWN);
    // Plugged while down: nothing shows until the netdev is up again.
    await changeEmulatedHost(root, { kind: "link", pf: "ens1f0", up: true });
    expect(link("ens1f0")).toEqual(ADMIN_DOWN);
    await changeEmulatedHost(root, { kind: "admin", pf: "ens1f0", up: true });
    expect(link("ens1f0")).toEqual(UP);
    // Unplugged while down: up again without carrier.
    await changeEmulatedHost(root, { kind: "admin", pf: "ens1f0", up: false });
    await changeEmulatedHost(root, { kind: "link", pf: "ens1f0", up: false });
    await changeEmulatedHost(root, { kind: "admin", pf: "ens1f0", up: true });
    expect(link("ens1f0")).toEqual(NO_CARRIER);
    // The kernel lock was given back: a kernel can serve the root now.
    await serve(root);
  });

  it("removes a VF as its remove file would and moves one to another driver", async () => {
    const { root, inventory, paths, link, driverOf } = await host();
    const [removed, moved] = inventory.pfs[0]!.vfs;
    const pfDir = paths.pciDevice(inventory.pfs[0]!.pciAddress);
    expect(await changeEmulatedHost(root, { kind: "remove-vf", vf: removed!.pciAddress })).toBe(
      `VF ${removed!.pciAddress} removed (sriov_numvfs of ${inventory.pfs[0]!.pciAddress} unchanged)`,
    );
    expect(fs.existsSync(paths.pciDevice(removed!.pciAddress))).toBe(false);
    expect(fs.existsSync(path.join(pfDir, "virtfn0"))).toBe(false);
    expect(fs.existsSync(path.join(paths.classNet, removed!.netdev!))).toBe(false);
    expect(fs.readFileSync(path.join(pfDir, "sriov_numvfs"), "utf8")).toBe(
      `${inventory.pfs[0]!.vfs.length}\n`,
    );

    await changeEmulatedHost(root, { kind: "rebind", vf: moved!.pciAddress, driver: "vfio-pci" });
    expect(driverOf(moved!.pciAddress)).toBe("vfio-pci");
    expect(
      fs.readFileSync(path.join(paths.pciDevice(moved!.pciAddress), "driver_override"), "utf8"),
    ).toBe("vfio-pci\n");
    expect(fs.existsSync(path.join(paths.devVfio, String(moved!.iommuGroup)))).toBe(true);
    expect(fs.existsSync(path.join(paths.classNet, moved!.netdev!))).toBe(false);

    await changeEmulatedHost(root, { kind: "rebind", vf: moved!.pciAddress, driver: "iavf" });
    expect(driverOf(moved!.pciAddress)).toBe("iavf");
    expect(
      fs.readFileSync(path.join(paths.pciDevice(moved!.pciAddress), "driver_override"), "utf8"),
    ).toBe("(null)\n");
    expect(fs.existsSync(path.join(paths.devVfio, String(moved!.iommuGroup)))).toBe(false);
    expect(link(moved!.netdev!)).toEqual(ADMIN_DOWN);
  });

  it("refuses what the host cannot do, and changes nothing", async () => {
    const { root, inventory, link, driverOf } = await host();
    const vf = inventory.pfs[0]!.vfs[0]!.pciAddress;
    const refused = (change: Parameters<typeof changeEmulatedHost>[1]) =>
      expect(changeEmulatedHost(root, change)).rejects.toThrow(HostChangeError);
    await refused({ kind: "link", pf: "eth9", up: false });
    await refused({ kind: "link", pf: vf, up: false });
    await refused({ kind: "rebind", vf, driver: "mlx5_core" });
    await refused({ kind: "remove-vf", vf: inventory.pfs[0]!.pciAddress });
    expect(link("ens1f0")).toEqual(UP);
    expect(driverOf(vf)).toBe("iavf");
    await changeEmulatedHost(root, { kind: "remove-vf", vf });
    await expect(changeEmulatedHost(root, { kind: "remove-vf", vf })).rejects.toThrow(
      `VF ${vf} is not present`,
    );
  });
});

describe("changeEmulatedHost with a serving kernel", () => {
  it("has the kernel make the change over its socket, in order with what it serves", async () => {
    const { root, inventory, paths, link, driverOf } = await host();
    const kernel = await serve(root);
    expect(fs.statSync(kernelSocketPath(root)).isSocket()).toBe(true);
    await changeEmulatedHost(root, { kind: "link", pf: "ens1f1", up: false });
    expect(link("ens1f1")).toEqual(NO_CARRIER);
    const vf = inventory.pfs[1]!.vfs[2]!;
    await changeEmulatedHost(root, { kind: "rebind", vf: vf.pciAddress, driver: "vfio-pci" });
    expect(driverOf(vf.pciAddress)).toBe("vfio-pci");
    // The kernel serves the VF where the change left it: back to iavf through its FIFOs.
    const vfDir = paths.pciDevice(vf.pciAddress);
    await fs.promises.writeFile(path.join(vfDir, "driver_override"), "\n");
    await fs.promises.writeFile(path.join(paths.pciDriver("vfio-pci"), "unbind"), vf.pciAddress);
    await vi.waitFor(() => expect(driverOf(vf.pciAddress)).toBeUndefined(), { interval: 5 });
    await fs.promises.writeFile(paths.pciDriversProbe, vf.pciAddress);
    await vi.waitFor(() => expect(driverOf(vf.pciAddress)).toBe("iavf"), { interval: 5 });

    await changeEmulatedHost(root, { kind: "remove-vf", vf: vf.pciAddress });
    expect(fs.existsSync(vfDir)).toBe(false);
    await expect(changeEmulatedHost(root, { kind: "link", pf: "nope", up: true })).rejects.toThrow(
      "no PF nope on this host",
    );
    await kernel.stop();
    expect(fs.existsSync(kernelSocketPath(root))).toBe(false);
  });

  it("waits for a probe in progress before changing its device", async () => {
    const { root, inventory, paths, driverOf } = await host();
    const kernel = await serve(root, 300);
    const vf = inventory.pfs[0]!.vfs[1]!.pciAddress;
    await fs.promises.writeFile(path.join(paths.pciDriver("iavf"), "unbind"), vf);
    await vi.waitFor(() => expect(driverOf(vf)).toBeUndefined(), { interval: 5 });
    await fs.promises.writeFile(paths.pciDriversProbe, vf);
    const messages = () =>
      kernel.logs
        .filter((line) => line.level === "warn" || JSON.stringify(line.fields).includes(vf))
        .map((line) => line.message);
    await vi.waitFor(() => expect(messages()).toContain("probing"), { interval: 5 });
    // Asked during the probe (to iavf): made after it, as the kernel's device lock orders it.
    await kernel.change({ kind: "rebind", vf, driver: "vfio-pci" });
    expect(driverOf(vf)).toBe("vfio-pci");
    expect(messages()).toEqual([
      "unbound",
      "probing",
      "probed and bound",
      "host changed behind the driver's back",
    ]);
  });
});

describe("parsing changes", () => {
  it("reads flag lists", () => {
    expect(parseChangeList("link", "ens1f0=down, 0000:3b:00.1=up")).toEqual([
      { kind: "link", pf: "ens1f0", up: false },
      { kind: "link", pf: "0000:3b:00.1", up: true },
    ]);
    expect(parseChangeList("remove-vf", "0000:3b:02.1,0000:3b:02.2")).toEqual([
      { kind: "remove-vf", vf: "0000:3b:02.1" },
      { kind: "remove-vf", vf: "0000:3b:02.2" },
    ]);
    expect(parseChangeList("rebind", "0000:3b:02.1=vfio-pci")).toEqual([
      { kind: "rebind", vf: "0000:3b:02.1", driver: "vfio-pci" },
    ]);
    for (const [kind, list] of [
      ["link", "ens1f0"],
      ["admin", "ens1f0=off"],
      ["remove-vf", "ens1f0v1"],
      ["rebind", "0000:3b:02.1"],
      ["rebind", "0000:3b:02.1=vfio-pci=x"],
    ] as const) {
      expect(() => parseChangeList(kind, list), list).toThrow(HostChangeError);
    }
  });

  it("checks what comes over the socket", () => {
    expect(parseHostChange({ kind: "admin", pf: "ens1f0", up: true })).toEqual({
      kind: "admin",
      pf: "ens1f0",
      up: true,
    });
    for (const bad of [null, {}, { kind: "link", pf: "ens1f0", up: "down" }, { kind: "rebind" }]) {
      expect(() => parseHostChange(bad), JSON.stringify(bad)).toThrow(HostChangeError);
    }
  });
});
