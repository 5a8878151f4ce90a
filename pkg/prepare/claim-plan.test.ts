import { describe, expect, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { VfConfig } from "../../api/v1alpha1/vf-config.js";
import type { ClaimPlanInput, DevicePlanInput } from "./claim-plan.js";
import { pciAddressOfDevice, planClaim } from "./claim-plan.js";

const KIND = "sriovnetwork.openshift.io/vf";

function device(
  name: string,
  fields: Partial<Omit<VfConfig, "apiVersion" | "kind">> = {},
  extra: Partial<DevicePlanInput> = {},
): DevicePlanInput {
  return {
    result: { request: "vf", driver: "sriovnetwork.openshift.io", pool: "node-a", device: name },
    config: { apiVersion: API_VERSION, kind: "VfConfig", ...fields },
    host: { driver: "iavf", iommuGroup: 40 },
    publishedResourceName: undefined,
    network: null,
    ...extra,
  };
}

function plan(devices: DevicePlanInput[], extra: Partial<ClaimPlanInput> = {}) {
  return planClaim({
    ref: { namespace: "ns", name: "claim", uid: "uid-1" },
    podUids: ["pod-1"],
    devices,
    takenIfNames: new Map(),
    interfacePrefix: "net",
    cdiKind: KIND,
    cdiSpecFile: "/cdi/spec.json",
    ...extra,
  });
}

describe("planClaim", () => {
  it("plans a whole PF with its kernel driver: its own address and interface, as a VF's", () => {
    const [pf] = plan([
      device("pf-0000-3b-00-0", {}, { host: { driver: "i40e", iommuGroup: 12 } }),
    ]).devices;
    expect(pf).toMatchObject({
      device: "pf-0000-3b-00-0",
      pciAddress: "0000:3b:00.0",
      originalDriver: "i40e",
      targetDriver: "i40e",
      ifName: "net1",
    });
  });

  it("records the whole PF's link to restore, and refuses one the host uses", () => {
    const link = { name: "ens1f0", up: true };
    const [pf] = plan([
      device("pf-0000-3b-00-0", {}, { host: { driver: "i40e", iommuGroup: 12, link } }),
    ]).devices;
    expect(pf!.pfLink).toEqual(link);
    const [unlinked] = plan([
      device("pf-0000-3b-00-0", {}, { host: { driver: "i40e", iommuGroup: 12, link: null } }),
    ]).devices;
    expect(unlinked!.pfLink).toBeNull();
    const used = { driver: "i40e", iommuGroup: 12, link, hostUsesLink: true };
    expect(() => plan([device("pf-0000-3b-00-0", {}, { host: used })])).toThrow(
      /^whole PF 0000:3b:00.0: the host uses its network interface ens1f0 \(an address or route on it\)/,
    );
  });

  it("takes a whole PF's VFs along: named <its ifName>v<index>, each with the network at its own address", () => {
    const network = {
      ref: { namespace: "ns", name: "net" },
      cniConfig: { cniVersion: "1.0.0", name: "net", plugins: [{ type: "host-device" }] },
    };
    const host = {
      driver: "i40e",
      iommuGroup: 12,
      vfs: [
        { vfID: 0, pciAddress: "0000:3b:02.0" },
        { vfID: 1, pciAddress: "0000:3b:02.1" },
      ],
    };
    const [pf, vf] = plan([
      device("pf-0000-3b-00-0", {}, { host, network }),
      device("0000-3c-02-0", {}, { network }),
    ]).devices;
    expect(pf!.ifName).toBe("net1");
    expect(
      pf!.wholePfVfs!.map(({ ifName, pciAddress, cniConfig }) => [
        ifName,
        pciAddress,
        cniConfig?.plugins[0]?.["deviceID"],
      ]),
    ).toEqual([
      ["net1v0", "0000:3b:02.0", "0000:3b:02.0"],
      ["net1v1", "0000:3b:02.1", "0000:3b:02.1"],
    ]);
    expect(vf!.wholePfVfs).toBeUndefined();
    expect(vf!.ifName).toBe("net2");
    // Without a network nothing is plugged, the VFs' names are still reserved.
    const [bare] = plan([device("pf-0000-3b-00-0", {}, { host })]).devices;
    expect(bare!.wholePfVfs!.map((v) => [v.ifName, v.cniConfig])).toEqual([
      ["net1v0", null],
      ["net1v1", null],
    ]);
  });

  it("refuses a whole PF's VF names that are too long or taken by another request", () => {
    const host = {
      driver: "i40e",
      iommuGroup: 12,
      vfs: [{ vfID: 10, pciAddress: "0000:3b:03.2" }],
    };
    expect(() =>
      plan([device("pf-0000-3b-00-0", { ifName: "fifteen-chars-x" }, { host })]),
    ).toThrow(/interface name "fifteen-chars-xv10" for VF 10 .* give the PF a shorter ifName/);
    expect(() =>
      plan([
        device("pf-0000-3b-00-0", { ifName: "wan" }, { host }),
        device("0000-3c-02-0", { ifName: "wanv10" }),
      ]),
    ).toThrow(/interface name "wanv10" would be used twice in the pod/);
  });

  it("puts a whole PF's VFs on vfio-pci with their groups when asked, and keeps the PF on its driver", () => {
    const host = {
      driver: "i40e",
      iommuGroup: 12,
      vfs: [
        { vfID: 0, pciAddress: "0000:3b:02.0", driver: "iavf", iommuGroup: 40 },
        { vfID: 1, pciAddress: "0000:3b:02.1", driver: "", iommuGroup: 41 },
      ],
    };
    const [pf] = plan([device("pf-0000-3b-00-0", { driver: "vfio-pci" }, { host })]).devices;
    expect(pf).toMatchObject({ originalDriver: "i40e", targetDriver: "i40e", iommuGroup: 12 });
    expect(pf!.wholePfVfs).toEqual([
      {
        pciAddress: "0000:3b:02.0",
        ifName: "net1v0",
        cniConfig: null,
        vfio: { originalDriver: "iavf", iommuGroup: 40 },
      },
      {
        pciAddress: "0000:3b:02.1",
        ifName: "net1v1",
        cniConfig: null,
        vfio: { originalDriver: "", iommuGroup: 41 },
      },
    ]);
    const ungrouped = { ...host, vfs: [{ ...host.vfs[0]!, iommuGroup: null }] };
    expect(() =>
      plan([device("pf-0000-3b-00-0", { driver: "vfio-pci" }, { host: ungrouped })]),
    ).toThrow(/^VF 0 \(0000:3b:02.0\) of whole PF 0000:3b:00.0 has no IOMMU group/);
    expect(() =>
      plan([device("pf-0000-3b-00-0", { driver: "vfio-pci" }, { host: { ...host, vfs: [] } })]),
    ).toThrow(/^whole PF 0000:3b:00.0 has no VFs, so driver vfio-pci has nothing to bind/);
  });

  it("refuses a whole PF off its network driver, and a PF that is gone, naming it a PF", () => {
    expect(() =>
      plan([device("pf-0000-3b-00-0", {}, { host: { driver: "", iommuGroup: 12 } })]),
    ).toThrow(/^whole PF 0000:3b:00.0 is not bound to any driver/);
    expect(() => plan([device("pf-0000-3b-00-0", {}, { host: undefined })])).toThrow(
      /^PF 0000:3b:00.0 \(device pf-0000-3b-00-0\) is not present on this host/,
    );
  });

  it("plans a kernel-driver VF as it is and a vfio VF with the driver to restore", () => {
    const claim = plan([
      device("0000-3b-02-0"),
      device("0000-3b-02-1", { driver: "vfio-pci", ifName: "dpdk0", addVhostMount: true }),
    ]);
    expect(claim).toEqual({
      namespace: "ns",
      name: "claim",
      podUids: ["pod-1"],
      state: "PrepareStarted",
      cdiSpecFile: "/cdi/spec.json",
      devices: [
        {
          request: "vf",
          pool: "node-a",
          device: "0000-3b-02-0",
          pciAddress: "0000:3b:02.0",
          originalDriver: "iavf",
          targetDriver: "iavf",
          iommuGroup: 40,
          ifName: "net1",
          addVhostMount: false,
          resourceName: "vf",
          netAttachDef: null,
          cniConfig: null,
          cdiDeviceId: `${KIND}=0000:3b:02.0`,
        },
        expect.objectContaining({
          pciAddress: "0000:3b:02.1",
          originalDriver: "iavf",
          targetDriver: "vfio-pci",
          ifName: "dpdk0",
          addVhostMount: true,
        }),
      ],
    });
  });

  it("takes the published resource name, else the main request name", () => {
    const sub = device("0000-3b-02-1");
    sub.result.request = "dpdk/intel";
    const claim = plan([
      device("0000-3b-02-0", {}, { publishedResourceName: "eth0_resource" }),
      sub,
    ]);
    expect(claim.devices.map((vf) => vf.resourceName)).toEqual(["eth0_resource", "dpdk"]);
  });

  it("injects the VF's PCI address into its network's CNI configuration", () => {
    const network = {
      ref: { namespace: "ns", name: "net" },
      cniConfig: { cniVersion: "1.0.0", name: "net", plugins: [{ type: "sriov" }] },
    };
    const claim = plan([
      device("0000-3b-02-0", {}, { network }),
      device("0000-3b-02-1", {}, { network }),
    ]);
    expect(claim.devices.map((vf) => vf.cniConfig?.plugins[0])).toEqual([
      { type: "sriov", deviceID: "0000:3b:02.0", pciBusID: "0000:3b:02.0" },
      { type: "sriov", deviceID: "0000:3b:02.1", pciBusID: "0000:3b:02.1" },
    ]);
    expect(claim.devices[0]!.netAttachDef).toEqual({ namespace: "ns", name: "net" });
  });

  it("carries static addresses and a MAC to the CNI, for one VF with a network only", () => {
    const network = {
      ref: { namespace: "ns", name: "net" },
      cniConfig: {
        cniVersion: "1.0.0",
        name: "net",
        plugins: [{ type: "sriov", capabilities: { ips: true, mac: true } }],
      },
    };
    const ips = ["10.56.217.10/24"];
    const mac = "02:00:00:aa:bb:01";
    const [vf] = plan([device("0000-3b-02-0", { ips, mac }, { network })]).devices;
    expect(vf!.runtimeConfig).toEqual({ ips, mac });
    expect(plan([device("0000-3b-02-0", {}, { network })]).devices[0]).not.toHaveProperty(
      "runtimeConfig",
    );
    expect(() => plan([device("0000-3b-02-0", { ips })])).toThrow(
      'VfConfig of request "vf" sets ips but names no network: set netAttachDefName',
    );
    expect(() =>
      plan([
        device("0000-3b-02-0", { mac }, { network }),
        device("0000-3b-02-1", { mac }, { network }),
      ]),
    ).toThrow("sets mac, but the request has several VFs");
    const withoutCapabilities = {
      ...network,
      cniConfig: {
        ...network.cniConfig,
        plugins: [{ type: "sriov", capabilities: { mac: true } }],
      },
    };
    expect(() =>
      plan([device("0000-3b-02-0", { ips, mac }, { network: withoutCapabilities })]),
    ).toThrow(
      'sets ips, but no plugin of network ns/net declares the capability, so nothing would apply it: add "capabilities": {"ips": true}',
    );
  });

  it("skips interface names the pod's other claims use", () => {
    const claim = plan([device("0000-3b-02-0"), device("0000-3b-02-1")], {
      takenIfNames: new Map([["net1", "ns/other"]]),
    });
    expect(claim.devices.map((vf) => vf.ifName)).toEqual(["net2", "net3"]);
  });

  it("refuses a VF the host lacks, vfio without an IOMMU group, and a kernel config on a VF without a netdev", () => {
    expect(() => plan([device("0000-3b-02-0", {}, { host: undefined })])).toThrow(
      /VF 0000:3b:02.0 \(device 0000-3b-02-0\) is not present on this host/,
    );
    expect(() =>
      plan([
        device(
          "0000-3b-02-0",
          { driver: "vfio-pci" },
          { host: { driver: "iavf", iommuGroup: null } },
        ),
      ]),
    ).toThrow(/has no IOMMU group, so vfio-pci cannot use it: enable the IOMMU/);
    expect(() =>
      plan([
        device(
          "0000-3b-02-0",
          { driver: "default" },
          { host: { driver: "vfio-pci", iommuGroup: 3 } },
        ),
      ]),
    ).toThrow(/is bound to vfio-pci, so it has no network interface/);
    expect(() =>
      plan([device("0000-3b-02-0", {}, { host: { driver: "", iommuGroup: 3 } })]),
    ).toThrow(/is not bound to any driver/);
  });

  it("keeps a VF already on vfio-pci there, with nothing to restore", () => {
    const claim = plan([
      device(
        "0000-3b-0a-6",
        { driver: "vfio-pci" },
        { host: { driver: "vfio-pci", iommuGroup: 9 } },
      ),
    ]);
    expect(claim.devices[0]).toMatchObject({
      originalDriver: "vfio-pci",
      targetDriver: "vfio-pci",
    });
  });
});

describe("pciAddressOfDevice", () => {
  it("reads the PCI address back from a device name", () => {
    expect(pciAddressOfDevice("0000-3b-02-1")).toBe("0000:3b:02.1");
    for (const bad of ["vf-0", "0000-3b-02-9", "0000-3b-20-1", "0000:3b:02.1"]) {
      expect(() => pciAddressOfDevice(bad)).toThrow(/is not a device name this driver publishes/);
    }
  });

  it("reads a whole PF's address back from its pf- name, and refuses names it never publishes", () => {
    expect(pciAddressOfDevice("pf-0000-3b-00-0")).toBe("0000:3b:00.0");
    for (const bad of ["pf-0000-3b-00-9", "pf-pf-0000-3b-00-0", "pf0000-3b-00-0"]) {
      expect(() => pciAddressOfDevice(bad)).toThrow(/is not a device name this driver publishes/);
    }
  });
});
