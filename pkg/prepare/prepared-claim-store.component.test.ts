import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PreparedClaimStore } from "./prepared-claim-store.js";
import { preparedClaim, preparedVf } from "./testing/fixtures.js";

const logger = pino({ level: "silent" });

describe("PreparedClaimStore", () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "claim-store-"));
    file = path.join(dir, "checkpoint.json");
    const writer = new PreparedClaimStore({ file, bootId: "boot", logger });
    writer.load();
    await writer.update((entries) => {
      entries.set(
        "uid-vfio",
        preparedClaim({
          name: "vfio",
          podUids: ["pod-1"],
          devices: [
            preparedVf({ pciAddress: "0000:3b:02.0", targetDriver: "vfio-pci" }),
            preparedVf({ pciAddress: "0000:3b:02.1" }),
          ],
        }),
      );
      entries.set(
        "uid-whole",
        preparedClaim({
          name: "whole",
          podUids: ["pod-3"],
          devices: [
            preparedVf({
              device: "pf-0000-3c-00-0",
              pciAddress: "0000:3c:00.0",
              originalDriver: "i40e",
              targetDriver: "i40e",
              wholePfVfs: [
                {
                  pciAddress: "0000:3c:02.0",
                  ifName: "net1v0",
                  cniConfig: null,
                  vfio: { originalDriver: "iavf", iommuGroup: 60 },
                },
              ],
            }),
          ],
        }),
      );
      entries.set(
        "uid-started",
        preparedClaim({
          name: "started",
          podUids: ["pod-1", "pod-2"],
          state: "PrepareStarted",
          devices: [preparedVf({ pciAddress: "0000:3b:02.2", targetDriver: "vfio-pci" })],
        }),
      );
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Another instance's view of the same file (a second plugin during a rolling update). */
  const reader = () => {
    const store = new PreparedClaimStore({ file, bootId: "boot", logger });
    store.load();
    return store;
  };

  it("keeps publishing the driver a VF had before a claim rebound it", () => {
    expect(reader().originalDrivers()).toEqual(
      new Map([
        ["0000:3b:02.0", "iavf"],
        ["0000:3c:02.0", "iavf"],
        ["0000:3b:02.2", "iavf"],
      ]),
    );
  });

  it("tells the health monitor the driver every VF of a claim is meant to be on", () => {
    expect(reader().preparedDrivers()).toEqual(
      new Map([
        ["0000:3b:02.0", "vfio-pci"],
        ["0000:3b:02.1", "iavf"],
        ["0000:3c:00.0", "i40e"],
        ["0000:3c:02.0", "vfio-pci"],
        ["0000:3b:02.2", "vfio-pci"],
      ]),
    );
  });

  it("names the claims holding each device, and the claims of a pod, only once prepared", () => {
    const store = reader();
    const vfio = { namespace: "ns", name: "vfio", uid: "uid-vfio" };
    expect(store.claimsHoldingDevices()).toEqual(
      new Map([
        ["0000-3b-02-0", [vfio]],
        ["0000-3b-02-1", [vfio]],
        ["pf-0000-3c-00-0", [{ namespace: "ns", name: "whole", uid: "uid-whole" }]],
      ]),
    );
    expect(store.preparedClaimsOfPod("pod-1").map((entry) => entry.uid)).toEqual(["uid-vfio"]);
    expect(store.preparedClaimsOfPod("pod-2")).toEqual([]);
  });
});
