import { describe, expect, it } from "vitest";
import type { VfOnHost } from "./claim-plan.js";
import type { PreparedClaim } from "./prepared-claim.js";
import type { HostSnapshot } from "./recovery.js";
import { recoveryDecision, redoActions, undoActions } from "./recovery.js";
import { preparedClaim, preparedVf } from "./testing/fixtures.js";

const kernelVf = preparedVf({ pciAddress: "0000:3b:02.0" });
const vfioVf = preparedVf({
  pciAddress: "0000:3b:02.1",
  originalDriver: "iavf",
  targetDriver: "vfio-pci",
  iommuGroup: 41,
});
const vfio2 = preparedVf({
  pciAddress: "0000:3b:02.2",
  originalDriver: "iavf",
  targetDriver: "vfio-pci",
  iommuGroup: 42,
});

/** A whole PF prepared with 2 VFs while its link was up. */
const pf = preparedVf({
  device: "pf-0000-3b-00-0",
  pciAddress: "0000:3b:00.0",
  originalDriver: "i40e",
  targetDriver: "i40e",
  wholePfVfs: [
    { pciAddress: "0000:3b:02.0", ifName: "net1v0", cniConfig: null },
    { pciAddress: "0000:3b:02.1", ifName: "net1v1", cniConfig: null },
  ],
  pfLink: { name: "ens1f0", up: true },
});

const claim = (state: PreparedClaim["state"]) =>
  preparedClaim({ state, devices: [kernelVf, vfioVf, vfio2] });

function host(vfs: Record<string, VfOnHost | undefined>, cdiSpecExists = true): HostSnapshot {
  return { vfs: new Map(Object.entries(vfs)), cdiSpecExists };
}

const asPrepared = host({
  "0000:3b:02.0": { driver: "iavf", iommuGroup: 40 },
  "0000:3b:02.1": { driver: "vfio-pci", iommuGroup: 41 },
  "0000:3b:02.2": { driver: "vfio-pci", iommuGroup: 42 },
});

describe("undoActions", () => {
  it("removes the spec, restores rebound VFs last-first, then forgets the claim", () => {
    expect(undoActions(claim("PrepareCompleted"), asPrepared)).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.2", driver: "iavf" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.1", driver: "iavf" },
      { kind: "drop-entry" },
    ]);
  });

  it("puts a whole PF's VF count back when it changed, and its link up or down as it was", () => {
    const whole = preparedClaim({ state: "UnprepareStarted", devices: [pf] });
    const pfNow = (vfs: string[], link: VfOnHost["link"]) =>
      host({
        "0000:3b:00.0": {
          driver: "i40e",
          iommuGroup: 12,
          vfs: vfs.map((pciAddress, vfID) => ({ vfID, pciAddress })),
          link,
        },
      });
    const both = ["0000:3b:02.0", "0000:3b:02.1"];
    expect(undoActions(whole, pfNow(both, { name: "ens1f0", up: true }))).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "drop-entry" },
    ]);
    // Back from the pod: down (a move between namespaces closes the link), 1 VF left.
    expect(undoActions(whole, pfNow(["0000:3b:02.0"], { name: "ens1f0", up: false }))).toEqual([
      { kind: "remove-cdi-spec" },
      {
        kind: "restore-num-vfs",
        numVfs: 2,
        pciAddress: "0000:3b:00.0",
        prepared: both,
        now: ["0000:3b:02.0"],
      },
      { kind: "set-link", pciAddress: "0000:3b:00.0", name: "ens1f0", up: true },
      { kind: "drop-entry" },
    ]);
    // Same count, other VFs: nothing to write; not back on the host: said, not failed.
    expect(undoActions(whole, pfNow(["0000:3b:02.0", "0000:3b:03.0"], null))).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "pf-link-gone", pciAddress: "0000:3b:00.0", name: "ens1f0" },
      { kind: "drop-entry" },
    ]);
    // A PF that had no netdev on the host, or that is gone, has no link to restore.
    const unlinked = preparedClaim({ state: "PrepareStarted", devices: [{ ...pf, pfLink: null }] });
    expect(undoActions(unlinked, pfNow(both, null))).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "drop-entry" },
    ]);
    expect(undoActions(whole, host({ "0000:3b:00.0": undefined }))).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "drop-entry" },
    ]);
  });

  it("puts a whole PF's VFs back from vfio-pci, last first, unless they changed", () => {
    const vfioPf = {
      ...pf,
      pfLink: null,
      wholePfVfs: pf.wholePfVfs!.map((vf, index) => ({
        ...vf,
        vfio: { originalDriver: "iavf", iommuGroup: 40 + index },
      })),
    };
    const whole = preparedClaim({ state: "UnprepareStarted", devices: [vfioPf] });
    const pfNow = (vfs: { pciAddress: string; driver: string }[]) =>
      host({
        "0000:3b:00.0": {
          driver: "i40e",
          iommuGroup: 12,
          vfs: vfs.map((vf, vfID) => ({ vfID, iommuGroup: 40 + vfID, ...vf })),
        },
      });
    expect(
      undoActions(
        whole,
        pfNow([
          { pciAddress: "0000:3b:02.0", driver: "vfio-pci" },
          { pciAddress: "0000:3b:02.1", driver: "vfio-pci" },
        ]),
      ),
    ).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.1", driver: "iavf" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.0", driver: "iavf" },
      { kind: "drop-entry" },
    ]);
    // Half rolled back already; or re-created meanwhile: only the count goes back.
    expect(
      undoActions(
        whole,
        pfNow([
          { pciAddress: "0000:3b:02.0", driver: "iavf" },
          { pciAddress: "0000:3b:02.1", driver: "vfio-pci" },
        ]),
      ),
    ).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.1", driver: "iavf" },
      { kind: "drop-entry" },
    ]);
    expect(undoActions(whole, pfNow([{ pciAddress: "0000:3b:02.0", driver: "iavf" }]))).toEqual([
      { kind: "remove-cdi-spec" },
      expect.objectContaining({ kind: "restore-num-vfs", numVfs: 2 }),
      { kind: "drop-entry" },
    ]);
    // Redo: VFs the host moved off vfio-pci go back, a renumbered group rewrites the spec.
    const prepared = preparedClaim({ state: "PrepareCompleted", devices: [vfioPf] });
    const renumbered = host({
      "0000:3b:00.0": {
        driver: "i40e",
        iommuGroup: 12,
        vfs: [
          { vfID: 0, pciAddress: "0000:3b:02.0", driver: "iavf", iommuGroup: 40 },
          { vfID: 1, pciAddress: "0000:3b:02.1", driver: "vfio-pci", iommuGroup: 77 },
        ],
      },
    });
    expect(redoActions(prepared, renumbered)).toEqual([
      { kind: "bind-driver", pciAddress: "0000:3b:02.0", driver: "vfio-pci" },
      { kind: "update-iommu-group", pciAddress: "0000:3b:02.1", iommuGroup: 77 },
      { kind: "write-cdi-spec" },
    ]);
  });

  it("leaves VFs alone that already have their original driver or are gone", () => {
    const halfBound = host({
      "0000:3b:02.0": { driver: "iavf", iommuGroup: 40 },
      "0000:3b:02.1": { driver: "", iommuGroup: 41 },
      "0000:3b:02.2": undefined,
    });
    expect(undoActions(claim("PrepareStarted"), halfBound)).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "bind-driver", pciAddress: "0000:3b:02.1", driver: "iavf" },
      { kind: "drop-entry" },
    ]);
    const untouched = host({
      "0000:3b:02.0": { driver: "iavf", iommuGroup: 40 },
      "0000:3b:02.1": { driver: "iavf", iommuGroup: 41 },
      "0000:3b:02.2": { driver: "iavf", iommuGroup: 42 },
    });
    expect(undoActions(claim("PrepareStarted"), untouched)).toEqual([
      { kind: "remove-cdi-spec" },
      { kind: "drop-entry" },
    ]);
  });
});

describe("redoActions", () => {
  it("does nothing when the host still shows the prepared claim", () => {
    expect(redoActions(claim("PrepareCompleted"), asPrepared)).toEqual([]);
  });

  it("refuses a whole PF whose VFs are not the ones it was prepared with", () => {
    const whole = preparedClaim({ state: "PrepareCompleted", devices: [pf] });
    const withVfs = (addresses: string[]) =>
      host({
        "0000:3b:00.0": {
          driver: "i40e",
          iommuGroup: 12,
          vfs: addresses.map((pciAddress, vfID) => ({ vfID, pciAddress })),
        },
      });
    expect(redoActions(whole, withVfs(["0000:3b:02.0", "0000:3b:02.1"]))).toEqual([]);
    expect(redoActions(whole, withVfs(["0000:3b:02.0"]))).toEqual([
      {
        kind: "pf-vfs-changed",
        pciAddress: "0000:3b:00.0",
        prepared: ["0000:3b:02.0", "0000:3b:02.1"],
        now: ["0000:3b:02.0"],
      },
    ]);
  });

  it("re-creates a vanished spec", () => {
    const noSpec = { ...asPrepared, cdiSpecExists: false };
    expect(redoActions(claim("PrepareCompleted"), noSpec)).toEqual([{ kind: "write-cdi-spec" }]);
  });

  it("after a reboot re-binds vfio VFs, follows renumbered IOMMU groups, and reports gone VFs", () => {
    const rebooted = host(
      {
        "0000:3b:02.0": { driver: "iavf", iommuGroup: 50 },
        "0000:3b:02.1": { driver: "iavf", iommuGroup: 51 },
        "0000:3b:02.2": undefined,
      },
      false,
    );
    expect(redoActions(claim("PrepareCompleted"), rebooted)).toEqual([
      { kind: "bind-driver", pciAddress: "0000:3b:02.1", driver: "vfio-pci" },
      { kind: "update-iommu-group", pciAddress: "0000:3b:02.1", iommuGroup: 51 },
      { kind: "missing-vf", pciAddress: "0000:3b:02.2" },
      { kind: "write-cdi-spec" },
    ]);
  });

  it("rewrites the spec when a group changed even though the file exists", () => {
    const moved = host({
      "0000:3b:02.0": { driver: "iavf", iommuGroup: 40 },
      "0000:3b:02.1": { driver: "vfio-pci", iommuGroup: 41 },
      "0000:3b:02.2": { driver: "vfio-pci", iommuGroup: 7 },
    });
    expect(redoActions(claim("PrepareCompleted"), moved)).toEqual([
      { kind: "update-iommu-group", pciAddress: "0000:3b:02.2", iommuGroup: 7 },
      { kind: "write-cdi-spec" },
    ]);
  });
});

describe("recoveryDecision", () => {
  it("rolls back interrupted prepares and finishes interrupted unprepares", () => {
    for (const state of ["PrepareStarted", "UnprepareStarted"] as const) {
      for (const fromPreviousBoot of [false, true]) {
        const decision = recoveryDecision(claim(state), asPrepared, fromPreviousBoot);
        expect(decision.actions).toEqual(undoActions(claim(state), asPrepared));
      }
    }
    expect(recoveryDecision(claim("PrepareStarted"), asPrepared, false).reason).toMatch(
      /rolling back/,
    );
    expect(recoveryDecision(claim("UnprepareStarted"), asPrepared, false).reason).toMatch(
      /finishing/,
    );
  });

  it("re-applies completed prepares, in this boot and after a reboot", () => {
    const lost = { ...asPrepared, cdiSpecExists: false };
    expect(recoveryDecision(claim("PrepareCompleted"), lost, false)).toEqual({
      actions: [{ kind: "write-cdi-spec" }],
      reason: "prepared: repairing what the host lost",
    });
    expect(recoveryDecision(claim("PrepareCompleted"), lost, true).reason).toMatch(/rebooted/);
  });
});
