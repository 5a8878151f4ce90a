import { describe, expect, it } from "vitest";
import {
  cdiDeviceId,
  claimCdiSpec,
  claimEnv,
  pciDeviceEnvName,
  preparedDevicesOf,
} from "./cdi-edits.js";
import { preparedClaim, preparedVf } from "./testing/fixtures.js";

const KIND = "sriovnetwork.openshift.io/vf";

describe("pciDeviceEnvName", () => {
  it("names variables as the SR-IOV device plugin does", () => {
    expect(pciDeviceEnvName("eth0_resource")).toBe("PCIDEVICE_ETH0_RESOURCE");
    expect(pciDeviceEnvName("openshift.io/intel-sriov")).toBe("PCIDEVICE_OPENSHIFT_IO_INTEL_SRIOV");
  });
});

/** A CDI device name (container-device-interface `parser.ValidateDeviceName`). */
const CDI_DEVICE_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

describe("cdiDeviceId", () => {
  it("names a device after its PCI address, the device ID Multus hands the CNI", () => {
    const id = cdiDeviceId(KIND, "0000:3b:02.1");
    expect(id).toBe("sriovnetwork.openshift.io/vf=0000:3b:02.1");
    expect(id.split("=")[1]).toMatch(CDI_DEVICE_NAME);
  });
});

describe("claimCdiSpec", () => {
  const kernel = preparedVf({ pciAddress: "0000:3b:02.0", resourceName: "eth0_resource" });
  const vfio = preparedVf({
    pciAddress: "0000:3b:02.1",
    request: "dpdk/intel",
    originalDriver: "iavf",
    targetDriver: "vfio-pci",
    iommuGroup: 41,
    addVhostMount: true,
    resourceName: "dpdk",
    netAttachDef: { namespace: "ns", name: "net-a" },
  });

  it("gives each VF its device nodes and index variable, and the claim its shared variables", () => {
    const spec = claimCdiSpec({ devices: [kernel, vfio] }, { kind: KIND, hostRoot: "/" });
    expect(spec).toEqual({
      cdiVersion: "0.5.0", // device names starting with a digit
      kind: KIND,
      devices: [
        {
          name: "0000:3b:02.0",
          containerEdits: { env: ["SRIOVNETWORK_VF_DEVICE_0=0000:3b:02.0"] },
        },
        {
          name: "0000:3b:02.1",
          containerEdits: {
            env: ["SRIOVNETWORK_VF_DEVICE_1=0000:3b:02.1"],
            deviceNodes: [
              { path: "/dev/vfio/41" },
              { path: "/dev/vfio/vfio" },
              { path: "/dev/vhost-net" },
              { path: "/dev/net/tun" },
            ],
          },
        },
      ],
      containerEdits: {
        env: [
          "PCIDEVICE_ETH0_RESOURCE=0000:3b:02.0",
          "PCIDEVICE_DPDK=0000:3b:02.1",
          "SRIOVNETWORK_PCI_ADDRESSES=0000:3b:02.0,0000:3b:02.1",
          "SRIOVNETWORK_NET_ATTACH_DEF_NAME=ns/net-a",
        ],
      },
    });
  });

  it("gives a whole PF the VFIO groups of its VFs on vfio-pci, and lists its VFs", () => {
    const pf = preparedVf({
      device: "pf-0000-3b-00-0",
      pciAddress: "0000:3b:00.0",
      originalDriver: "i40e",
      targetDriver: "i40e",
      iommuGroup: 12,
      wholePfVfs: [
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
          vfio: { originalDriver: "iavf", iommuGroup: 41 },
        },
      ],
    });
    const spec = claimCdiSpec({ devices: [pf] }, { kind: KIND, hostRoot: "/" });
    expect(spec.devices[0]!.containerEdits).toEqual({
      env: [
        "SRIOVNETWORK_VF_DEVICE_0=0000:3b:00.0",
        "SRIOVNETWORK_PF_VFS_0=0000:3b:02.0,0000:3b:02.1",
      ],
      deviceNodes: [{ path: "/dev/vfio/40" }, { path: "/dev/vfio/41" }, { path: "/dev/vfio/vfio" }],
    });
    // With kernel drivers the VFs' netdevs go through CNI: no device nodes.
    const kernelPf = { ...pf, wholePfVfs: pf.wholePfVfs!.map(({ vfio: _, ...vf }) => vf) };
    const kernelSpec = claimCdiSpec({ devices: [kernelPf] }, { kind: KIND, hostRoot: "/" });
    expect(kernelSpec.devices[0]!.containerEdits.deviceNodes).toBeUndefined();
  });

  it("keeps the CDI name a claim was prepared with before the PCI-address names", () => {
    const old = preparedVf({ cdiDeviceId: `${KIND}=uid-1-0000-3b-02-0` });
    const spec = claimCdiSpec({ devices: [old] }, { kind: KIND, hostRoot: "/" });
    expect(spec.devices.map((device) => device.name)).toEqual(["uid-1-0000-3b-02-0"]);
    expect(preparedDevicesOf(preparedClaim({ devices: [old] }), spec)[0]!.cdiDeviceIds).toEqual([
      `${KIND}=uid-1-0000-3b-02-0`,
    ]);
  });

  it("points device nodes at the host root when it is not /, which needs CDI 0.5.0", () => {
    const spec = claimCdiSpec({ devices: [vfio] }, { kind: KIND, hostRoot: "/tmp/host" });
    expect(spec.cdiVersion).toBe("0.5.0");
    expect(spec.devices[0]!.containerEdits.deviceNodes?.slice(0, 2)).toEqual([
      { path: "/dev/vfio/41", hostPath: "/tmp/host/dev/vfio/41" },
      { path: "/dev/vfio/vfio", hostPath: "/tmp/host/dev/vfio/vfio" },
    ]);
  });

  it("lists VFs of one resource together, and each network once", () => {
    const net = { namespace: "ns", name: "n" };
    expect(
      claimEnv([
        preparedVf({ pciAddress: "0000:3b:02.0", resourceName: "a", netAttachDef: net }),
        preparedVf({ pciAddress: "0000:3b:02.1", resourceName: "b", netAttachDef: net }),
        preparedVf({ pciAddress: "0000:3b:02.2", resourceName: "a" }),
      ]),
    ).toEqual([
      "PCIDEVICE_A=0000:3b:02.0,0000:3b:02.2",
      "PCIDEVICE_B=0000:3b:02.1",
      "SRIOVNETWORK_PCI_ADDRESSES=0000:3b:02.0,0000:3b:02.1,0000:3b:02.2",
      "SRIOVNETWORK_NET_ATTACH_DEF_NAME=ns/n",
    ]);
  });
});

describe("preparedDevicesOf", () => {
  it("answers with the full request name and the CDI id of each VF", () => {
    const claim = preparedClaim({ devices: [preparedVf({ request: "dpdk/intel" })] });
    const spec = claimCdiSpec(claim, { kind: KIND, hostRoot: "/" });
    expect(preparedDevicesOf(claim, spec)).toEqual([
      {
        requestNames: ["dpdk/intel"],
        poolName: "node-a",
        deviceName: "0000-3b-02-0",
        cdiDeviceIds: ["sriovnetwork.openshift.io/vf=0000:3b:02.0"],
      },
    ]);
  });

  it("gives no CDI id for a device without edits", () => {
    const claim = preparedClaim();
    const spec = claimCdiSpec(claim, { kind: KIND, hostRoot: "/" });
    spec.devices[0]!.containerEdits = {};
    expect(preparedDevicesOf(claim, spec)[0]!.cdiDeviceIds).toEqual([]);
  });
});
