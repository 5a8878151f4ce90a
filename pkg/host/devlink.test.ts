import { describe, expect, it } from "vitest";
import {
  checkDevlinkHandle,
  parseEswitchShow,
  pciDevlinkHandle,
  type DevlinkOutcome,
} from "./devlink.js";

const NSIM = "netdevsim/netdevsim10";
const exited = (code: number, stdout: string, stderr = ""): DevlinkOutcome => ({
  kind: "exited",
  code,
  stdout,
  stderr,
});

/*
 * The outputs below are what `devlink -j dev eswitch show <handle>` (iproute2 6.1.0) printed
 * on Debian's 6.1 kernel in the real-kernel tier's guest: a netdevsim device with 2 VFs in
 * either mode, QEMU's igb (a PCI device without a devlink instance), and, on a kernel built
 * without devlink, the host of this repository's CI.
 */
describe("parseEswitchShow", () => {
  it("reads the mode of the handle's entry (captured on a real kernel)", () => {
    expect(
      parseEswitchShow(NSIM, exited(0, '{"dev":{"netdevsim/netdevsim10":{"mode":"legacy"}}}\n')),
    ).toEqual({ kind: "mode", mode: "legacy" });
    expect(
      parseEswitchShow(NSIM, exited(0, '{"dev":{"netdevsim/netdevsim10":{"mode":"switchdev"}}}\n')),
    ).toEqual({ kind: "mode", mode: "switchdev" });
    // Pretty (-p) output and the keys other drivers add read the same (written here, not
    // captured: mlx5's inline-mode and encap-mode as iproute2 6.1 prints them).
    const mlx5 =
      '{\n    "dev": {\n        "pci/0000:d8:00.0": {\n            "mode": "switchdev",\n' +
      '            "inline-mode": "none",\n            "encap-mode": "basic"\n        }\n    }\n}\n';
    expect(parseEswitchShow("pci/0000:d8:00.0", exited(0, mlx5))).toEqual({
      kind: "mode",
      mode: "switchdev",
    });
  });

  it("tells a device without a devlink instance (igb, captured) from a failure", () => {
    expect(
      parseEswitchShow(
        "pci/0000:01:00.0",
        exited(1, '{"dev":{}}\n', "kernel answers: No such device\n"),
      ),
    ).toEqual({ kind: "no-eswitch" });
    expect(
      parseEswitchShow(
        "pci/0000:01:00.0",
        exited(1, "", "kernel answers: Operation not supported\n"),
      ),
    ).toEqual({ kind: "no-eswitch" });
    expect(parseEswitchShow(NSIM, exited(1, "", "kernel answers: Permission denied\n"))).toEqual({
      kind: "failed",
      reason: "devlink exited 1: kernel answers: Permission denied",
    });
    expect(parseEswitchShow(NSIM, exited(2, "", ""))).toEqual({
      kind: "failed",
      reason: "devlink exited 2: no message",
    });
  });

  it("says what to install when devlink is missing, and names a kernel without devlink", () => {
    expect(parseEswitchShow(NSIM, { kind: "not-installed" })).toEqual({
      kind: "unavailable",
      reason: expect.stringMatching(/devlink is not installed: .*apt-get install iproute2/),
    });
    expect(parseEswitchShow(NSIM, exited(1, "", "Failed to connect to devlink Netlink\n"))).toEqual(
      { kind: "unavailable", reason: expect.stringContaining("CONFIG_NET_DEVLINK") },
    );
  });

  it("refuses output that is not devlink's answer for this handle", () => {
    const failed = (stdout: string) => parseEswitchShow(NSIM, exited(0, stdout)).kind;
    for (const stdout of [
      "",
      "netdevsim/netdevsim10: mode legacy\n",
      "[]",
      '{"dev":[]}',
      '{"dev":{}}',
      '{"dev":{"netdevsim/netdevsim11":{"mode":"legacy"}}}',
      '{"dev":{"netdevsim/netdevsim10":"switchdev"}}',
      '{"dev":{"netdevsim/netdevsim10":{}}}',
      '{"dev":{"netdevsim/netdevsim10":{"mode":"Switchdev"}}}',
      '{"dev":{"netdevsim/netdevsim10":{"mode":["switchdev"]}}}',
    ]) {
      expect(failed(stdout), stdout).toBe("failed");
    }
    expect(parseEswitchShow(NSIM, { kind: "failed", reason: "killed" })).toEqual({
      kind: "failed",
      reason: "killed",
    });
  });
});

describe("devlink handles", () => {
  it("accepts bus/device names and refuses what could become another argument", () => {
    expect(checkDevlinkHandle("pci/0000:3b:00.0")).toBe("pci/0000:3b:00.0");
    expect(checkDevlinkHandle(NSIM)).toBe(NSIM);
    for (const bad of ["", "pci", "-j", "pci/-p", "pci/0000:3b:00.0 mode", "../x", "pci/a/b"]) {
      expect(() => checkDevlinkHandle(bad), bad).toThrow(/not a devlink handle/);
    }
  });

  it("names a PCI device pci/<address>, and only a PCI address", () => {
    expect(pciDevlinkHandle("0000:3b:00.0")).toBe("pci/0000:3b:00.0");
    expect(() => pciDevlinkHandle("0000:3b:00.0/../x")).toThrow(/not a PCI address/);
  });
});
