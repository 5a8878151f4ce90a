import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EmulatedKernelOptions, HostProfile } from "../emulator/index.js";
import { EmulatedKernel, buildEmulatedHost, builtinProfiles } from "../emulator/index.js";
import {
  DriverBindError,
  bindDriver,
  currentDriver,
  refuseSharedIommuGroup,
} from "./driver-binding.js";
import { HostPaths } from "./paths.js";

/** x710: ens1f0's VFs 0000:3b:02.0-7 are on iavf. */
const VF0 = "0000:3b:02.0";
const VF1 = "0000:3b:02.1";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An emulated host with its kernel running, torn down after the test. */
async function emulatedHost(
  profile: HostProfile = builtinProfiles.x710,
  options: Pick<EmulatedKernelOptions, "probeDurationMs"> = {},
): Promise<HostPaths> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "driver-binding-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  await buildEmulatedHost({ root, profile });
  const kernel = new EmulatedKernel({ root, bindDelayMs: 1, ...options });
  await kernel.start();
  cleanups.push(() => kernel.stop());
  return new HostPaths({ root });
}

const overrideOf = (paths: HostPaths, address: string) =>
  fs.readFileSync(path.join(paths.pciDevice(address), "driver_override"), "utf8");

/** The driver_override the kernel shows once a cleared one has been seen. */
const waitForNoOverride = (paths: HostPaths, address: string) =>
  vi.waitFor(() => expect(overrideOf(paths, address)).toBe("(null)\n"), {
    timeout: 5_000,
    interval: 5,
  });

describe("bindDriver on an emulated kernel", () => {
  it("moves a VF to vfio-pci and back, leaving no override: the kernel's (null)", async () => {
    const paths = await emulatedHost();
    expect(overrideOf(paths, VF0)).toBe("(null)\n");
    expect(await bindDriver(paths, VF0, "vfio-pci", { timeoutMs: 5_000 })).toEqual({
      previous: "iavf",
    });
    expect(currentDriver(paths, VF0)).toBe("vfio-pci");
    await waitForNoOverride(paths, VF0);
    await bindDriver(paths, VF0, "iavf", { timeoutMs: 5_000 });
    expect(currentDriver(paths, VF0)).toBe("iavf");
    expect(fs.readdirSync(path.join(paths.pciDevice(VF0), "net"))).toEqual(["ens1f0v0"]);
    await waitForNoOverride(paths, VF0);
  });

  it("waits out a 1.5 s probe (igbvf took 2.1 s on a real 82576) and ends on the target, override cleared", async () => {
    const paths = await emulatedHost(builtinProfiles.x710, { probeDurationMs: 1_500 });
    const group = path.basename(fs.readlinkSync(path.join(paths.pciDevice(VF0), "iommu_group")));
    await bindDriver(paths, VF0, "vfio-pci", { timeoutMs: 10_000 });
    expect(currentDriver(paths, VF0)).toBe("vfio-pci");
    expect(fs.existsSync(path.join(paths.devVfio, group))).toBe(true);
    await waitForNoOverride(paths, VF0);
    await bindDriver(paths, VF0, "iavf", { timeoutMs: 10_000 });
    expect(currentDriver(paths, VF0)).toBe("iavf");
    expect(fs.existsSync(path.join(paths.devVfio, group))).toBe(false);
    expect(fs.existsSync(path.join(paths.classNet, "ens1f0v0"))).toBe(true);
    await waitForNoOverride(paths, VF0);
  });

  it("tells a VF whose IOMMU group holds other devices unfit for vfio-pci, touching nothing", async () => {
    const paths = await emulatedHost({
      ...builtinProfiles.x710,
      sharedIommuGroups: [[VF0, VF1]],
    });
    const group = path.basename(fs.readlinkSync(path.join(paths.pciDevice(VF0), "iommu_group")));
    expect(() => refuseSharedIommuGroup(paths, VF0)).toThrow(
      new DriverBindError(
        `${VF0} shares IOMMU group ${group} with ${VF1}: vfio-pci hands out whole groups, so a pod given /dev/vfio/${group} could reach every device in it; use VFs with a group of their own (ACS on the PCIe path)`,
      ),
    );
    expect(currentDriver(paths, VF0)).toBe("iavf");
    expect(overrideOf(paths, VF0)).toBe("(null)\n");
    // Moving it between kernel drivers is no concern of the group.
    await bindDriver(paths, VF0, "", { timeoutMs: 5_000 });
    expect(currentDriver(paths, VF0)).toBe("");
  });
});
