import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ProfileError, parseProfile, vfNetdevName, vfPciAddress } from "./profile.js";
import { builtinProfiles, loadProfile } from "./profiles.js";

const minimalPf = `
pfs:
  - pciAddress: "0000:3b:00.0"
    netdev: ens1f0
    vendor: "8086"
    deviceID: "1572"
    vfDeviceID: "154c"
    driver: i40e
    vfDriver: iavf
    totalVfs: 64
    vfOffset: 16
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseProfile(text, "test.yaml");
  } catch (error) {
    if (error instanceof ProfileError) return error.problems;
    throw error;
  }
  throw new Error("the profile validated");
}

describe("VF address math", () => {
  it("X540 interleaves the ports' VFs with offset 128 and stride 2", () => {
    const [port0, port1] = builtinProfiles.x540.pfs;
    expect([0, 1, 2, 3, 4].map((i) => vfPciAddress(port0!, i))).toEqual([
      "0000:03:10.0",
      "0000:03:10.2",
      "0000:03:10.4",
      "0000:03:10.6",
      "0000:03:11.0",
    ]);
    expect([0, 1, 62].map((i) => vfPciAddress(port1!, i))).toEqual([
      "0000:03:10.1",
      "0000:03:10.3",
      "0000:03:1f.5",
    ]);
  });

  it("X710 port 1 (offset 79) starts right after port 0's 64 VFs", () => {
    const [port0, port1] = builtinProfiles.x710.pfs;
    expect(vfPciAddress(port0!, 63)).toBe("0000:3b:09.7");
    expect(vfPciAddress(port1!, 0)).toBe("0000:3b:0a.0");
    expect(vfPciAddress(port1!, 63)).toBe("0000:3b:11.7");
  });

  it("E810 port 1's VFs run into the next bus", () => {
    expect(vfPciAddress(builtinProfiles.e810.pfs[1]!, 127)).toBe("0000:87:00.7");
  });

  it("names VF netdevs the systemd way", () => {
    expect(vfNetdevName("ens1f0", 3)).toBe("ens1f0v3");
  });
});

describe("parseProfile", () => {
  it("fills in documented defaults", () => {
    const profile = parseProfile(minimalPf, "test.yaml");
    expect(profile.otherDevices).toEqual([]);
    expect(profile.pfs[0]).toMatchObject({
      numaNode: -1,
      pcieRoot: "pci0000:00",
      linkType: "ethernet",
      eswitchMode: "legacy",
      numVfs: 0,
      vfStride: 1,
      rdma: false,
      vfDrivers: {},
      hostUsedVfs: [],
    });
  });

  it("reads vfDrivers with YAML's string keys as VF indexes", () => {
    const profile = parseProfile(
      `${minimalPf}    numVfs: 8\n    vfDrivers: {3: vfio-pci}\n    hostUsedVfs: [5]\n`,
      "test.yaml",
    );
    expect(profile.pfs[0]!.vfDrivers[3]).toBe("vfio-pci");
    expect(profile.pfs[0]!.hostUsedVfs).toEqual([5]);
  });

  it("names the source and the path of an unknown field", () => {
    const text = minimalPf.replace("vfOffset: 16", "vfOffset: 16\n    vfOfset: 3");
    expect(() => parseProfile(text, "lab/host.yaml")).toThrow(
      /invalid emulator profile lab\/host\.yaml:\n {2}- pfs\[0\]\.vfOfset: unknown field/,
    );
  });

  it("rejects unknown top-level fields and fields of other devices", () => {
    const text = `${minimalPf}otherDevices:\n  - {pciAddress: "0000:00:1f.6", vendor: "8086", deviceID: "15bb", class: "0x020000", driver: e1000e, colour: red}\nextra: 1\n`;
    const problems = problemsOf(text);
    expect(problems).toContainEqual(expect.stringMatching(/^extra: unknown field/));
    expect(problems).toContainEqual(
      expect.stringMatching(/^otherDevices\[0\]\.colour: unknown field/),
    );
  });

  it("rejects numVfs above totalVfs", () => {
    expect(problemsOf(`${minimalPf}    numVfs: 65\n`)).toEqual([
      "pfs[0].numVfs: 65 is above totalVfs 64",
    ]);
  });

  it("rejects VFs of different PFs on the same address", () => {
    // Port 1 at offset 15 puts its VF 0 on port 0's VF 0 (rid 3b01 + 15 = 3b00 + 16).
    const port1 = minimalPf
      .replace("pfs:\n", "")
      .replace("0000:3b:00.0", "0000:3b:00.1")
      .replace("ens1f0", "ens1f1")
      .replace("vfOffset: 16", "vfOffset: 15");
    const problems = problemsOf(minimalPf + port1);
    expect(problems[0]).toBe("pfs[1] VF 0: PCI address 0000:3b:02.0 collides with pfs[0] VF 0");
  });

  it("rejects a VF range that runs over another device", () => {
    const text = `${minimalPf}otherDevices:\n  - {pciAddress: "0000:3b:02.5", vendor: "8086", deviceID: "15bb", class: "0x020000", driver: e1000e}\n`;
    expect(problemsOf(text)).toEqual([
      "pfs[0] VF 5: PCI address 0000:3b:02.5 collides with otherDevices[0].pciAddress",
    ]);
  });

  it("rejects a stride of 0", () => {
    const text = minimalPf.replace("vfOffset: 16", "vfOffset: 16\n    vfStride: 0");
    expect(problemsOf(text)).toEqual([
      "pfs[0].vfStride: must be an integer from 1 to 65535, got number 0",
    ]);
  });

  it.each([
    ["a name over 15 bytes", "ens1f0-too-long-name", /longer than the kernel's 15-byte limit/],
    ["a name with a slash", "ens1/f0", /must be an interface name/],
    [
      "VF names over 15 bytes",
      "enp175s0f0np0",
      /VF netdev names like "enp175s0f0np0v63" would exceed 15 bytes/,
    ],
  ])("rejects %s", (_, netdev, message) => {
    const problems = problemsOf(minimalPf.replace("netdev: ens1f0", `netdev: "${netdev}"`));
    expect(problems).toEqual([expect.stringMatching(/^pfs\[0\]\.netdev: /)]);
    expect(problems[0]).toMatch(message);
  });

  it("asks for quoted hex ids rather than YAML numbers", () => {
    expect(problemsOf(minimalPf.replace('vendor: "8086"', "vendor: 8086"))).toEqual([
      'pfs[0].vendor: must be a quoted 4-digit lower-case hex id like "8086", got number 8086',
    ]);
  });

  it("reports every problem at once, with missing required fields", () => {
    const problems = problemsOf(`pfs:\n  - pciAddress: "3b:00.0"\n    numVfs: -1\n`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^pfs\[0\]\.pciAddress: must be a quoted PCI address/),
        "pfs[0].netdev: required field is missing",
        "pfs[0].totalVfs: required field is missing",
        "pfs[0].numVfs: must be an integer from 0 to 2048, got number -1",
      ]),
    );
  });

  it("checks vfDrivers and hostUsedVfs against the VFs that exist", () => {
    const text = `${minimalPf}    numVfs: 4\n    vfDrivers: {7: vfio-pci, 1: vfio-pci}\n    hostUsedVfs: [1, 9]\n`;
    expect(problemsOf(text)).toEqual([
      "pfs[0].vfDrivers.7: VF 7 does not exist with numVfs 4",
      "pfs[0].hostUsedVfs[0]: VF 1 is bound to vfio-pci and has no netdev the host could use",
      "pfs[0].hostUsedVfs[1]: VF 9 does not exist with numVfs 4",
    ]);
  });

  it("rejects a pcieRoot that cannot hold the device", () => {
    expect(problemsOf(`${minimalPf}    pcieRoot: pci0000:5d\n`)).toEqual([
      expect.stringMatching(/^pfs\[0\]\.pcieRoot: pci0000:5d cannot hold 0000:3b:00\.0/),
    ]);
  });

  it("allows switchdev only for mlx5_core, whose compat/devlink/mode shows it", () => {
    expect(problemsOf(`${minimalPf}    eswitchMode: switchdev\n`)).toEqual([
      "pfs[0].eswitchMode: switchdev shows only in compat/devlink/mode, which only mlx5_core has, not i40e",
    ]);
  });

  it("keeps device 00 of a root bus for its host bridge", () => {
    const text = `${minimalPf}otherDevices:\n  - {pciAddress: "0000:00:00.0", vendor: "8086", deviceID: "15bb", class: "0x020000", driver: e1000e}\n`;
    expect(problemsOf(text)).toEqual([
      "otherDevices[0].pciAddress: 0000:00:00.0 is device 00 of root bus pci0000:00, where its host bridge sits: use another device number",
    ]);
    // Device 00 of a bus below a root port is an ordinary endpoint.
    expect(() => parseProfile(minimalPf, "test.yaml")).not.toThrow();
  });

  it("reads sharedIommuGroups of PFs, VFs and other devices", () => {
    const profile = parseProfile(
      `${minimalPf}sharedIommuGroups:\n  - ["0000:3b:00.0", "0000:3b:02.0", "0000:3b:09.7"]\n`,
      "test.yaml",
    );
    expect(profile.sharedIommuGroups).toEqual([["0000:3b:00.0", "0000:3b:02.0", "0000:3b:09.7"]]);
    expect(parseProfile(minimalPf, "test.yaml")).not.toHaveProperty("sharedIommuGroups");
  });

  it("rejects shared IOMMU groups of unknown devices, of one device, or overlapping", () => {
    const text = `${minimalPf}sharedIommuGroups:\n  - ["0000:3b:00.0", "0000:3b:0a.0"]\n  - ["0000:3b:02.1"]\n  - ["0000:3b:02.1", "0000:3b:00.0"]\n  - "0000:3b:02.2"\n`;
    expect(problemsOf(text)).toEqual([
      expect.stringMatching(/^sharedIommuGroups\[3\]: must be a list of quoted PCI addresses/),
    ]);
    expect(problemsOf(text.replace('  - "0000:3b:02.2"\n', ""))).toEqual([
      "sharedIommuGroups[0]: 0000:3b:0a.0 is no PF, VF or other device of this profile",
      "sharedIommuGroups[1]: a shared group needs two or more devices",
      "sharedIommuGroups[2]: 0000:3b:02.1 is already in sharedIommuGroups[1]",
      "sharedIommuGroups[2]: 0000:3b:00.0 is already in sharedIommuGroups[0]",
    ]);
  });

  it("reports YAML syntax errors with the source", () => {
    expect(() => parseProfile("pfs: [", "broken.yaml")).toThrow(
      /invalid emulator profile broken\.yaml:\n {2}- not valid YAML/,
    );
  });
});

describe("loadProfile", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("returns builtins by name", () => {
    expect(loadProfile("x710")).toBe(builtinProfiles.x710);
  });

  it("reads a YAML file", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-profile-"));
    const file = path.join(dir, "host.yaml");
    fs.writeFileSync(file, minimalPf);
    expect(loadProfile(file).pfs[0]!.netdev).toBe("ens1f0");
  });

  it("says what it accepts when the name is neither", () => {
    expect(() => loadProfile("x720")).toThrow(
      'profile "x720" is neither a builtin (x710, e810, x540, cx6dx, igb-82576, scale) nor an existing YAML file',
    );
  });

  it("builtin profiles have realistic shapes", () => {
    const { scale, cx6dx } = builtinProfiles;
    expect(scale.pfs).toHaveLength(8);
    expect(new Set(scale.pfs.map((pf) => pf.numaNode))).toEqual(new Set([0, 1]));
    expect(scale.pfs.every((pf) => pf.numVfs === 256)).toBe(true);
    expect(cx6dx.pfs.every((pf) => pf.rdma && pf.vfDriver === "mlx5_core")).toBe(true);
    for (const profile of Object.values(builtinProfiles)) {
      expect(profile.otherDevices).toHaveLength(1);
    }
  });
});
