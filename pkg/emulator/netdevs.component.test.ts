import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EmulatedKernel } from "./kernel.js";
import { buildEmulatedHost, destroyEmulatedHost } from "./host.js";
import { macAddress } from "./layout.js";
import { LINK_ALIAS_PREFIX } from "./netdevs.js";
import { parseProfile } from "./profile.js";

// Real interfaces in the host namespace: names unique to this file (vitest runs files in parallel).
const PF_NETDEV = "emtst0";
const FOREIGN_LINK = "emtst0x";
const NETNS = "emtst-pod";

const profile = parseProfile(
  `
pfs:
  - pciAddress: "0000:5e:00.0"
    netdev: ${PF_NETDEV}
    vendor: "8086"
    deviceID: "1572"
    vfDeviceID: "154c"
    driver: i40e
    vfDriver: iavf
    pcieRoot: pci0000:5d
    totalVfs: 8
    numVfs: 4
    vfOffset: 16
    vfDrivers: {2: vfio-pci}
    hostUsedVfs: [3]
`,
  "netdevs.test.ts",
);

interface IpLink {
  ifname: string;
  address: string;
  ifalias?: string;
}

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function links(): IpLink[] {
  return JSON.parse(ip("-j", "link", "show")) as IpLink[];
}

function link(name: string): IpLink | undefined {
  return links().find((candidate) => candidate.ifname === name);
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // Already gone.
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function build(): Promise<string> {
  const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "emulator-netdevs-")), "host");
  cleanups.push(() => fs.rmSync(path.dirname(root), { recursive: true, force: true }));
  cleanups.push(() => destroyEmulatedHost(root));
  await buildEmulatedHost({ root, profile, netdevs: true });
  return root;
}

describe.skipIf(process.getuid?.() !== 0)("--netdevs", () => {
  it("creates a marked veth with the function's MAC for the PF's and every VF's netdev", async () => {
    const root = await build();
    const alias = `${LINK_ALIAS_PREFIX}${root}`;
    const ours = links().filter((candidate) => candidate.ifalias === alias);
    // The PF and VFs 0, 1 and 3 have netdevs (VF 2 is on vfio-pci): a pair each.
    expect(ours).toHaveLength(8);
    expect(link(PF_NETDEV)).toMatchObject({ ifalias: alias, address: macAddress("0000:5e:00.0") });
    for (const index of [0, 1, 3]) {
      const vf = link(`${PF_NETDEV}v${index}`);
      expect(vf, `${PF_NETDEV}v${index}`).toMatchObject({
        ifalias: alias,
        address: macAddress(`0000:5e:02.${index}`),
      });
    }
    expect(link(`${PF_NETDEV}v2`)).toBeUndefined();
    expect(ours.every((candidate) => Buffer.byteLength(candidate.ifname) <= 15)).toBe(true);
  });

  it("gives host-used VFs real addresses and shows the real /proc/net", async () => {
    const root = await build();
    const addresses = JSON.parse(ip("-j", "address", "show", "dev", `${PF_NETDEV}v3`)) as {
      addr_info: { local: string; prefixlen: number }[];
    }[];
    expect(addresses[0]!.addr_info).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ local: "198.18.1.1", prefixlen: 24 }),
        expect.objectContaining({ local: "2001:2:0:1::1", prefixlen: 64 }),
      ]),
    );
    expect(fs.readlinkSync(path.join(root, "proc/net"))).toBe("/proc/self/net");
    expect(fs.readFileSync(path.join(root, "proc/net/route"), "utf8")).toMatch(
      new RegExp(`\\n${PF_NETDEV}v3\\t000112C6\\t`),
    );
  });

  it("refuses to take over an interface it did not make", async () => {
    // This kernel may lack the dummy driver; a veth pair is any foreign link.
    ip("link", "add", `${PF_NETDEV}v1`, "type", "veth", "peer", "name", `${FOREIGN_LINK}1`);
    cleanups.push(() => tryIp("link", "delete", `${PF_NETDEV}v1`));
    const root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "emulator-netdevs-")), "host");
    cleanups.push(() => fs.rmSync(path.dirname(root), { recursive: true, force: true }));
    cleanups.push(() => destroyEmulatedHost(root));
    await expect(buildEmulatedHost({ root, profile, netdevs: true })).rejects.toThrow(
      `network interface ${PF_NETDEV}v1 already exists and was not made by the emulator`,
    );
    expect(link(`${PF_NETDEV}v1`)).toBeDefined();
  });

  it("tears down only its own links, also a VF end moved into another namespace", async () => {
    ip("link", "add", FOREIGN_LINK, "type", "veth", "peer", "name", `${FOREIGN_LINK}1`);
    cleanups.push(() => tryIp("link", "delete", FOREIGN_LINK));
    ip("link", "set", "dev", FOREIGN_LINK, "alias", `${LINK_ALIAS_PREFIX}/elsewhere`);
    ip("netns", "add", NETNS);
    cleanups.push(() => tryIp("netns", "delete", NETNS));
    const root = await build();
    // What the host-device CNI does with the VF netdev.
    ip("link", "set", "dev", `${PF_NETDEV}v0`, "netns", NETNS);
    expect(link(`${PF_NETDEV}v0`)).toBeUndefined();

    await destroyEmulatedHost(root);
    expect(fs.existsSync(root)).toBe(false);
    expect(
      links().filter((candidate) => candidate.ifalias === `${LINK_ALIAS_PREFIX}${root}`),
    ).toEqual([]);
    expect(ip("-n", NETNS, "-j", "link", "show")).not.toContain(`${PF_NETDEV}v0`);
    expect(link(FOREIGN_LINK)).toBeDefined();
  });

  it("the kernel removes and recreates veths with unbind, bind and sriov_numvfs", async () => {
    const root = await build();
    const kernel = new EmulatedKernel({ root, bindDelayMs: 2 });
    await kernel.start();
    cleanups.push(() => kernel.stop());
    const sys = (relative: string) => path.join(root, "sys", relative);
    const waitFor = (assertion: () => void) =>
      vi.waitFor(assertion, { timeout: 5000, interval: 10 });

    fs.writeFileSync(sys("bus/pci/drivers/iavf/unbind"), "0000:5e:02.0");
    await waitFor(() => expect(link(`${PF_NETDEV}v0`)).toBeUndefined());
    fs.writeFileSync(sys("bus/pci/drivers_probe"), "0000:5e:02.0");
    await waitFor(() =>
      expect(link(`${PF_NETDEV}v0`)).toMatchObject({ address: macAddress("0000:5e:02.0") }),
    );
    // The PF's netdev goes and comes with its driver too.
    fs.writeFileSync(sys("bus/pci/drivers/i40e/unbind"), "0000:5e:00.0");
    await waitFor(() => expect(link(PF_NETDEV)).toBeUndefined());
    fs.writeFileSync(sys("bus/pci/drivers_probe"), "0000:5e:00.0");
    await waitFor(() =>
      expect(link(PF_NETDEV)).toMatchObject({ address: macAddress("0000:5e:00.0") }),
    );

    const numVfs = sys("bus/pci/devices/0000:5e:00.0/sriov_numvfs");
    fs.writeFileSync(numVfs, "0");
    await waitFor(() =>
      expect(links().filter((candidate) => candidate.ifname.startsWith(`${PF_NETDEV}v`))).toEqual(
        [],
      ),
    );
    fs.writeFileSync(numVfs, "2");
    await waitFor(() =>
      expect(
        links()
          .map((candidate) => candidate.ifname)
          .filter((name) => name.startsWith(`${PF_NETDEV}v`))
          .sort(),
      ).toEqual([`${PF_NETDEV}v0`, `${PF_NETDEV}v1`]),
    );
  }, 30_000);
});
