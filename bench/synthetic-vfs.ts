/** Devices of simulated nodes, as discovery would report them, for benchmarks without hosts. */
import type { VfDevice } from "../pkg/devices/model.js";

/**
 * VF `vfID` of PF `pfIndex` on a node: PF 0 an Intel X710 (iavf), PF 1 an NVIDIA CX-6
 * (mlx5_core), `numVfs` VFs each, eight PCI functions to a device from device 02 on.
 */
function vf(nodeIndex: number, pfIndex: number, vfID: number, numVfs: number): VfDevice {
  const bus = (0x3b + pfIndex).toString(16);
  const device = (2 + Math.floor(vfID / 8)).toString(16).padStart(2, "0");
  const pciAddress = `0000:${bus}:${device}.${vfID % 8}`;
  const intel = pfIndex === 0;
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: {
      pciAddress,
      vfID,
      driver: intel ? "iavf" : "mlx5_core",
      iommuGroup: 100 + pfIndex * numVfs + vfID,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: {
      pciAddress: `0000:${bus}:00.0`,
      netdev: `eth${pfIndex}`,
      vendor: intel ? "8086" : "15b3",
      deviceID: intel ? "1572" : "101b",
      driver: intel ? "i40e" : "mlx5_core",
      vfVendor: intel ? "8086" : "15b3",
      vfDeviceID: intel ? "154c" : "101c",
      numaNode: (nodeIndex + pfIndex) % 2,
      pcieRoot: `pci0000:${bus}`,
      linkType: "ethernet",
      eswitchMode: "legacy",
      rdmaCapable: !intel,
      totalVfs: 64,
      numVfs,
    },
  };
}

/** The VFs of node `nodeIndex`: two PFs (Intel, NVIDIA) with `vfsPerPf` (≤ 64) each. */
export function syntheticVfs(nodeIndex: number, vfsPerPf: number): VfDevice[] {
  return [0, 1].flatMap((pf) =>
    Array.from({ length: vfsPerPf }, (_, id) => vf(nodeIndex, pf, id, vfsPerPf)),
  );
}
