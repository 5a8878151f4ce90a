import fs from "node:fs";
import { isMissing } from "./sysfs-tree.js";
import type { HostProfile } from "./profile.js";
import { parseProfile, validateProfile } from "./profile.js";

/*
 * Built-in profiles modelled on real adapters: ids, drivers, VF counts and SR-IOV
 * offsets/strides as the hardware reports them. They are TypeScript literals rather than
 * YAML files so they load the same from source and from tsc's output (which copies no YAML).
 * Every profile also has one onboard NIC that is not SR-IOV capable.
 */

const onboardI219 = {
  pciAddress: "0000:00:1f.6",
  vendor: "8086",
  deviceID: "15bb",
  class: "0x020000",
  driver: "e1000e",
  netdev: "eno1",
  numaNode: 0,
  pcieRoot: "pci0000:00",
};

/** Intel X710-DA2: i40e PFs, iavf VFs; the ports' VF ranges follow each other on bus 3b. */
const x710 = {
  pfs: [
    {
      pciAddress: "0000:3b:00.0",
      netdev: "ens1f0",
      vendor: "8086",
      deviceID: "1572",
      vfDeviceID: "154c",
      driver: "i40e",
      vfDriver: "iavf",
      numaNode: 0,
      pcieRoot: "pci0000:3a",
      totalVfs: 64,
      numVfs: 8,
      vfOffset: 16,
      vfStride: 1,
    },
    {
      pciAddress: "0000:3b:00.1",
      netdev: "ens1f1",
      vendor: "8086",
      deviceID: "1572",
      vfDeviceID: "154c",
      driver: "i40e",
      vfDriver: "iavf",
      numaNode: 0,
      pcieRoot: "pci0000:3a",
      totalVfs: 64,
      numVfs: 8,
      vfOffset: 79,
      vfStride: 1,
      // One VF already handed to a VM and one the host uses itself, as on a lived-in node.
      vfDrivers: { 6: "vfio-pci" },
      hostUsedVfs: [7],
    },
  ],
  otherDevices: [onboardI219],
};

/** Intel E810-XXVDA2: ice PFs, iavf VFs; port 1's range runs past bus 86 into bus 87. */
const e810 = {
  pfs: [0, 1].map((port) => ({
    pciAddress: `0000:86:00.${port}`,
    netdev: `ens2f${port}`,
    vendor: "8086",
    deviceID: "159b",
    vfDeviceID: "1889",
    driver: "ice",
    vfDriver: "iavf",
    numaNode: 1,
    pcieRoot: "pci0000:85",
    totalVfs: 128,
    numVfs: 8,
    vfOffset: port === 0 ? 8 : 135,
    vfStride: 1,
  })),
  otherDevices: [
    {
      pciAddress: "0000:02:00.0",
      vendor: "8086",
      deviceID: "1521",
      class: "0x020000",
      driver: "igb",
      netdev: "eno1",
      numaNode: 0,
      pcieRoot: "pci0000:00",
    },
  ],
};

/** Intel X540-AT2: ixgbe PFs, ixgbevf VFs; stride 2 interleaves the two ports' VFs. */
const x540 = {
  pfs: [0, 1].map((port) => ({
    pciAddress: `0000:03:00.${port}`,
    netdev: `enp3s0f${port}`,
    vendor: "8086",
    deviceID: "1528",
    vfDeviceID: "1515",
    driver: "ixgbe",
    vfDriver: "ixgbevf",
    numaNode: -1,
    pcieRoot: "pci0000:00",
    totalVfs: 63,
    numVfs: 8,
    vfOffset: 128,
    vfStride: 2,
  })),
  otherDevices: [{ ...onboardI219, pciAddress: "0000:00:19.0", deviceID: "153a", numaNode: -1 }],
};

/** NVIDIA ConnectX-6 Dx: mlx5_core drives PFs and VFs alike, each with an RDMA device. */
const cx6dx = {
  pfs: [0, 1].map((port) => ({
    pciAddress: `0000:d8:00.${port}`,
    netdev: `ens3f${port}np${port}`,
    vendor: "15b3",
    deviceID: "101d",
    vfDeviceID: "101e",
    driver: "mlx5_core",
    vfDriver: "mlx5_core",
    numaNode: 1,
    pcieRoot: "pci0000:d7",
    totalVfs: 127,
    numVfs: 8,
    vfOffset: port === 0 ? 2 : 128,
    vfStride: 1,
    rdma: true,
  })),
  otherDevices: [
    {
      pciAddress: "0000:04:00.0",
      vendor: "14e4",
      deviceID: "165f",
      class: "0x020000",
      driver: "tg3",
      netdev: "eno1",
      numaNode: 0,
      pcieRoot: "pci0000:00",
    },
  ],
};

/**
 * Intel 82576 (igb PF, igbvf VFs) as QEMU emulates it (`-device igb` behind a PCIe root
 * port): the card of the real-kernel test tier (test/real-kernel/), so the emulator can be
 * compared with a real kernel driving the same card. 7 VFs at offset 128, stride 2: VF n
 * is 01:10.(2n). QEMU has no NUMA information and puts a virtio NIC beside it.
 */
const igb82576 = {
  pfs: [
    {
      pciAddress: "0000:01:00.0",
      netdev: "eth0",
      vendor: "8086",
      deviceID: "10c9",
      vfDeviceID: "10ca",
      driver: "igb",
      vfDriver: "igbvf",
      numaNode: -1,
      pcieRoot: "pci0000:00",
      totalVfs: 7,
      numVfs: 4,
      vfOffset: 128,
      vfStride: 2,
    },
  ],
  otherDevices: [
    {
      pciAddress: "0000:00:03.0",
      vendor: "1af4",
      deviceID: "1000",
      class: "0x020000",
      driver: "virtio-pci",
      netdev: "eth1",
      numaNode: -1,
      pcieRoot: "pci0000:00",
    },
  ],
};

/**
 * Single-port E810-C PFs with `vfsPerPf` VFs each (at most 256) on the given buses, half
 * of them on NUMA node 0 and half on node 1, two root ports per root complex. 256 VFs at
 * offset 8 fill the PF's bus and spill into the next, so the PFs sit two buses apart.
 */
function e810Pfs(buses: readonly number[], vfsPerPf: number) {
  return buses.map((bus, i) => {
    const hexBus = bus.toString(16).padStart(2, "0");
    const rootBus = (bus - 1 - (i % 2) * 2).toString(16).padStart(2, "0");
    return {
      pciAddress: `0000:${hexBus}:00.0`,
      netdev: `ens${i + 1}f0`,
      vendor: "8086",
      deviceID: "1592",
      vfDeviceID: "1889",
      driver: "ice",
      vfDriver: "iavf",
      numaNode: i < buses.length / 2 ? 0 : 1,
      pcieRoot: `pci0000:${rootBus}`,
      totalVfs: vfsPerPf,
      numVfs: vfsPerPf,
      vfOffset: 8,
      vfStride: 1,
    };
  });
}

/** 8 E810-C PFs × 256 VFs over 2 NUMA nodes, two root complexes per node. */
const scalePfBuses = [0x18, 0x1a, 0x3b, 0x3d, 0x86, 0x88, 0xaf, 0xb1];
const scale = { pfs: e810Pfs(scalePfBuses, 256), otherDevices: [onboardI219] };

const MAX_VFS_PER_E810 = 256;
/** Pairs of PFs below one root bus take 5 buses (root, PF, spill, PF, spill) from 0x10 on: 96 PFs fit. */
const MAX_SCALED_PFS = 96;

/**
 * A host of `vfCount` VFs for scale curves: as few E810-C PFs as hold them (at most 256
 * VFs each, every PF the same number), two to a root bus from bus 0x10 on, and the onboard NIC.
 * `scaledHostProfile(2048)` has the shape of the builtin `scale` (8 × 256).
 */
export function scaledHostProfile(vfCount: number): HostProfile {
  const pfCount = Math.ceil(vfCount / MAX_VFS_PER_E810);
  if (!Number.isInteger(vfCount) || vfCount < 1 || pfCount > MAX_SCALED_PFS) {
    throw new Error(
      `a scaled host has 1 to ${MAX_SCALED_PFS * MAX_VFS_PER_E810} VFs, not ${vfCount}`,
    );
  }
  if (vfCount % pfCount !== 0) {
    throw new Error(
      `${vfCount} VFs do not split evenly over ${pfCount} PFs of at most ${MAX_VFS_PER_E810}: pick a multiple of ${pfCount}`,
    );
  }
  const buses = Array.from(
    { length: pfCount },
    (_, i) => 0x10 + 5 * Math.floor(i / 2) + 1 + 2 * (i % 2),
  );
  return validateProfile(
    { pfs: e810Pfs(buses, vfCount / pfCount), otherDevices: [onboardI219] },
    `scaled host profile of ${vfCount} VFs`,
  );
}

export const builtinProfiles = {
  x710: validateProfile(x710, "builtin profile x710"),
  e810: validateProfile(e810, "builtin profile e810"),
  x540: validateProfile(x540, "builtin profile x540"),
  cx6dx: validateProfile(cx6dx, "builtin profile cx6dx"),
  "igb-82576": validateProfile(igb82576, "builtin profile igb-82576"),
  scale: validateProfile(scale, "builtin profile scale"),
} as const satisfies Record<string, HostProfile>;

export type BuiltinProfileName = keyof typeof builtinProfiles;

function isBuiltinProfileName(name: string): name is BuiltinProfileName {
  return Object.hasOwn(builtinProfiles, name);
}

/** A builtin profile by name, else a YAML profile file. */
export function loadProfile(nameOrFile: string): HostProfile {
  if (isBuiltinProfileName(nameOrFile)) return builtinProfiles[nameOrFile];
  let text: string;
  try {
    text = fs.readFileSync(nameOrFile, "utf8");
  } catch (error) {
    if (!isMissing(error)) throw error;
    throw new Error(
      `profile "${nameOrFile}" is neither a builtin (${Object.keys(builtinProfiles).join(", ")}) nor an existing YAML file`,
      { cause: error },
    );
  }
  return parseProfile(text, nameOrFile);
}
