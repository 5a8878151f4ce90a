import { describe, expect, it } from "vitest";
import type { PreparedClaim, PreparedVf } from "../prepare/index.js";
import { interfacesToAttach } from "./attachment.js";

const network = (deviceID: string) => ({
  cniVersion: "1.0.0",
  name: "net",
  plugins: [{ type: "host-device", deviceID }],
});

function prepared(overrides: Partial<PreparedVf>): PreparedVf {
  return {
    request: "nic",
    pool: "node-a",
    device: "pf-0000-3b-00-0",
    pciAddress: "0000:3b:00.0",
    originalDriver: "i40e",
    targetDriver: "i40e",
    iommuGroup: 12,
    ifName: "net1",
    addVhostMount: false,
    resourceName: "nic",
    netAttachDef: { namespace: "ns", name: "net" },
    cniConfig: network("0000:3b:00.0"),
    cdiDeviceId: "sriovnetwork.openshift.io/vf=uid-pf-0000-3b-00-0",
    ...overrides,
  };
}

const claim = (devices: PreparedVf[]): PreparedClaim => ({
  namespace: "ns",
  name: "whole",
  podUids: ["pod-1"],
  state: "PrepareCompleted",
  devices,
  cdiSpecFile: "/cdi/spec.json",
});

describe("interfacesToAttach", () => {
  it("plugs a whole PF first, then each of its VFs under the PF's device, addresses on the PF only", () => {
    const pf = prepared({
      runtimeConfig: { ips: ["10.0.0.1/24"] },
      wholePfVfs: [
        { pciAddress: "0000:3b:02.0", ifName: "net1v0", cniConfig: network("0000:3b:02.0") },
        { pciAddress: "0000:3b:02.1", ifName: "net1v1", cniConfig: null },
      ],
    });
    const interfaces = interfacesToAttach([{ uid: "uid", claim: claim([pf]) }]);
    expect(
      interfaces.map(({ device, pciAddress, ifName, runtimeConfig }) => [
        device,
        pciAddress,
        ifName,
        runtimeConfig,
      ]),
    ).toEqual([
      ["pf-0000-3b-00-0", "0000:3b:00.0", "net1", { ips: ["10.0.0.1/24"] }],
      ["pf-0000-3b-00-0", "0000:3b:02.0", "net1v0", undefined],
    ]);
  });
});
