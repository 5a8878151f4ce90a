import fc from "fast-check";
import type { ResourceFilter } from "../../../api/v1alpha1/sriov-resource-filter.js";
import { deviceName, pfDeviceName, type PfDevice, type VfDevice } from "../model.js";

// Generated VFs and filters for property tests, from small value pools so that generated
// filters match generated devices often.

export const pciAddress = fc
  .tuple(
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: 0x1f }),
    fc.integer({ min: 0, max: 7 }),
  )
  .map(([domain, bus, device, fn]) => `${hex(domain, 4)}:${hex(bus, 2)}:${hex(device, 2)}.${fn}`);

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** Small value pools, so that generated filters match generated devices often. */
const vendor = fc.constantFrom("8086", "15b3", "15B3");
const deviceId = fc.constantFrom("154c", "1018", "101e");
const pfName = fc.constantFrom("eth0", "eth1", "ens1f0");
const driver = fc.constantFrom("iavf", "mlx5_core", "vfio-pci", "");
const numa = fc.integer({ min: -1, max: 3 });

export const vfDevices: fc.Arbitrary<VfDevice> = fc
  .record({
    pciAddress,
    pfPciAddress: pciAddress,
    vfID: fc.integer({ min: 0, max: 255 }),
    driver,
    iommuGroup: fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }),
    pfNetdev: fc.option(pfName, { nil: undefined }),
    vfVendor: vendor,
    vfDeviceID: deviceId,
    pfDeviceID: deviceId,
    numaNode: numa,
    pcieRoot: fc.constantFrom("pci0000:3a", "pci0000:00"),
    linkType: fc.constantFrom("ethernet", "infiniband", "unknown" as const),
    eswitchMode: fc.constantFrom("legacy", "switchdev" as const),
    rdmaCapable: fc.boolean(),
    resourceName: fc.option(fc.constantFrom("intel_sriov", "fast"), { nil: undefined }),
  })
  .map((r) => {
    const device: VfDevice = {
      name: deviceName(r.pciAddress),
      vf: {
        pciAddress: r.pciAddress,
        vfID: r.vfID,
        driver: r.driver,
        iommuGroup: r.iommuGroup,
        netdev: `vf${r.vfID}`,
        rdmaCapable: false,
      },
      pf: {
        pciAddress: r.pfPciAddress,
        netdev: r.pfNetdev,
        vendor: "8086",
        deviceID: r.pfDeviceID,
        driver: "i40e",
        vfVendor: r.vfVendor,
        vfDeviceID: r.vfDeviceID,
        numaNode: r.numaNode,
        pcieRoot: r.pcieRoot,
        linkType: r.linkType,
        eswitchMode: r.eswitchMode,
        rdmaCapable: r.rdmaCapable,
        totalVfs: 64,
        numVfs: 8,
      },
    };
    if (r.resourceName !== undefined) device.resourceName = r.resourceName;
    return device;
  });

/** Whole PFs, from the same pools (a generated VF's PF fields, the PF's own ids). */
export const pfDevices: fc.Arbitrary<PfDevice> = fc
  .record({
    vf: vfDevices,
    vendor,
    driver: fc.constantFrom("i40e", "ice", "mlx5_core"),
    totalVfs: fc.integer({ min: 0, max: 256 }),
    numVfs: fc.integer({ min: 0, max: 256 }),
  })
  .map(({ vf, vendor: pfVendor, driver: pfDriver, totalVfs, numVfs }) => {
    const device: PfDevice = {
      name: pfDeviceName(vf.pf.pciAddress),
      pf: {
        ...vf.pf,
        vendor: pfVendor,
        driver: pfDriver,
        vfVendor: "",
        vfDeviceID: "",
        totalVfs,
        numVfs,
      },
      vfAddresses: [],
    };
    if (vf.resourceName !== undefined) device.resourceName = vf.resourceName;
    return device;
  });

const values = <T>(item: fc.Arbitrary<T>) =>
  fc.option(fc.array(item, { maxLength: 3 }), { nil: undefined });

export const resourceFilters: fc.Arbitrary<ResourceFilter> = fc.record(
  {
    vendors: values(vendor),
    devices: values(deviceId),
    pfNames: values(
      fc.oneof(
        pfName,
        fc.tuple(pfName, fc.nat(8), fc.nat(8)).map(([n, a, b]) => `${n}#${a}-${a + b}`),
      ),
    ),
    pciAddresses: values(pciAddress),
    rootDevices: values(pciAddress),
    numaNodes: values(numa.map(String)),
    drivers: values(driver.filter((d) => d !== "")),
  },
  { requiredKeys: [] },
);

/** What the API server hands back: JSON, so no undefined members and no shared objects. */
export function overTheWire<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The attributes less one. */
export function without<T>(attributes: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(attributes).filter(([name]) => name !== key));
}
