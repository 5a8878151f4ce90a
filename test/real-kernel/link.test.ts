import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { Guest, PF_ADDRESS } from "./support/guest.js";

const PF_DIR = `/sys/bus/pci/devices/${PF_ADDRESS}`;

/** What sysfs shows of a netdev's link: `carrier` undefined when its read fails. */
interface Link {
  carrier: string | undefined;
  carrierError: string | undefined;
  operstate: string;
  flags: string;
}

/*
 * The link of the igb PF (an Intel 82576 in QEMU) and of its igbvf VFs as a real kernel
 * (Debian's 6.1) shows it; the emulated host copies the PF's (pkg/emulator/sysfs-tree.ts,
 * LinkState) and the health monitor reads these files. What a run showed:
 *
 *   PF administratively down (after boot):  carrier: read fails, EINVAL ("Invalid argument");
 *                                            operstate "down"; flags 0x1002
 *   PF up, link:                             carrier "1"; operstate "up"; flags 0x1003
 *   PF up, cable cut (QMP set_link off):     carrier "0"; operstate "down"; flags 0x1003
 *                                            (within ~120 ms; "NIC Link is Down" in dmesg)
 *   cable back:                              carrier "1"; operstate "up" (within ~0.5 s)
 *   PF up again, cable cut while it was down: carrier "0"; operstate "down"
 *
 * The VFs (igbvf): down until set up, like any netdev (carrier EINVAL, operstate "down");
 * set up, they show carrier "1", operstate "up" (~7 s after the PF came up: igbvf waits
 * for the PF's reset). A cut cable does not reach them in QEMU's igb: they kept carrier
 * "1" and operstate "up" for the 60 s a run watched, so a VF's own files cannot tell
 * that its PF has no link; the PF's can. Setting the PF down does reach them: carrier "0",
 * operstate "down" about a second later (igb resets and tells its VFs).
 */
describe("the igb PF's link on a real kernel (QEMU set_link)", () => {
  let guest: Guest;
  let workDir: string;
  let pf: string;
  let vfs: string[];

  const link = async (netdev: string): Promise<Link> => {
    const dir = `/sys/class/net/${netdev}`;
    const carrier = await guest.exec(["cat", `${dir}/carrier`]);
    return {
      carrier: carrier.code === 0 ? carrier.stdout.trim() : undefined,
      carrierError: carrier.code === 0 ? undefined : carrier.stderr.trim(),
      operstate: await guest.read(`${dir}/operstate`),
      flags: await guest.read(`${dir}/flags`),
    };
  };
  const until = (netdev: string, expected: Partial<Link>) =>
    vi.waitFor(async () => expect(await link(netdev)).toMatchObject(expected), {
      timeout: 30_000,
      interval: 100,
    });

  const adminDown = (netdev: string): Link => ({
    carrier: undefined,
    carrierError: `cat: /sys/class/net/${netdev}/carrier: Invalid argument`,
    operstate: "down",
    flags: "0x1002",
  });
  const up: Link = { carrier: "1", carrierError: undefined, operstate: "up", flags: "0x1003" };
  const noCarrier: Link = { ...up, carrier: "0", operstate: "down" };

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-link-"));
    guest = await Guest.boot({
      kernel: inject("guestKernel"),
      initramfs: inject("guestInitramfs"),
      consoleLog: path.join(workDir, "console.log"),
    });
    pf = (await guest.sh(`ls ${PF_DIR}/net`)).trim();
    await guest.sh(`echo 2 > ${PF_DIR}/sriov_numvfs`);
    const vfNetdevs = async () =>
      (await guest.sh(`for vf in ${PF_DIR}/virtfn*; do ls $vf/net 2>/dev/null || true; done`))
        .split("\n")
        .filter((line) => line !== "");
    await vi.waitFor(async () => expect(await vfNetdevs()).toHaveLength(2), { timeout: 30_000 });
    vfs = await vfNetdevs();
  });

  afterAll(async () => {
    await guest?.shutdown();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("shows a down PF's carrier as unreadable (EINVAL), an up one's as 1 and a cut one's as 0", async () => {
    expect(await link(pf)).toEqual(adminDown(pf));
    for (const vf of vfs) expect(await link(vf)).toEqual(adminDown(vf));

    await guest.sh(`ip link set ${pf} up`);
    await until(pf, up);
    for (const vf of vfs) await guest.sh(`ip link set ${vf} up`);
    for (const vf of vfs) await until(vf, up);

    await guest.setLink(false);
    await until(pf, noCarrier);
    // QEMU's igb does not pass the cut to its VFs (see above).
    for (const vf of vfs) expect(await link(vf)).toEqual(up);

    await guest.setLink(true);
    await until(pf, up);
    expect(await guest.read(`/sys/class/net/${pf}/carrier_down_count`)).toBe("2");

    // The PF set down takes its VFs' carrier.
    await guest.sh(`ip link set ${pf} down`);
    expect(await link(pf)).toEqual(adminDown(pf));
    for (const vf of vfs) await until(vf, noCarrier);
  });
});
