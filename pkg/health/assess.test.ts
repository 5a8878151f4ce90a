import { describe, expect, it } from "vitest";
import type { VfDevice } from "../devices/model.js";
import { x710Pf } from "../devices/testing/fixtures.js";
import {
  assessDevice,
  boundMessage,
  pfLinkDown,
  track,
  type Assessment,
  type PfObservation,
  type VfObservation,
} from "./assess.js";
import { MAX_HEALTH_MESSAGE_CHARS } from "./model.js";
import { taintsOf } from "./taints.js";

const device: VfDevice = {
  name: "0000-3b-02-1",
  vf: {
    pciAddress: "0000:3b:02.1",
    vfID: 1,
    driver: "iavf",
    iommuGroup: 7,
    netdev: "ens1f0v1",
    rdmaCapable: false,
  },
  pf: x710Pf(),
};
const linkUp: PfObservation = { present: true, netdev: "ens1f0", carrier: "1", operstate: "up" };
const onIavf: VfObservation = { present: true, driver: "iavf", hasIommuGroup: true };

describe("assessDevice", () => {
  it("is healthy with the PF's link up and the VF on a driver it may be on", () => {
    expect(assessDevice(device, linkUp, onIavf, ["iavf"])).toEqual({
      state: "Healthy",
      message: "",
    });
    const onVfio = { present: true, driver: "vfio-pci", hasIommuGroup: true };
    expect(assessDevice(device, linkUp, onVfio, ["iavf", "vfio-pci"]).state).toBe("Healthy");
  });

  it.each<[string, PfObservation, VfObservation, string]>([
    [
      "PFMissing",
      { ...linkUp, present: false },
      onIavf,
      "PF 0000:3b:00.0 of VF 0000:3b:02.1 is gone",
    ],
    ["VFMissing", linkUp, { ...onIavf, present: false }, "sriov_numvfs was lowered"],
    ["PFMissing", { ...linkUp, netdev: undefined }, onIavf, "has no network interface"],
    ["PFLinkDown", { ...linkUp, carrier: "0", operstate: "down" }, onIavf, "ip link set ens1f0 up"],
    [
      "UnexpectedDriver",
      linkUp,
      { ...onIavf, driver: "ixgbevf" },
      "bound to ixgbevf, expected iavf",
    ],
    ["UnexpectedDriver", linkUp, { ...onIavf, driver: "" }, "bound to no driver"],
  ])("is Unhealthy (%s) and says what to do", (reason, pf, vf, text) => {
    const assessment = assessDevice(device, pf, vf, ["iavf"]);
    expect(assessment).toMatchObject({ state: "Unhealthy", reason });
    expect(assessment.message).toContain(text);
  });

  it("calls a vfio-pci VF without an IOMMU group unhealthy", () => {
    const vf = { present: true, driver: "vfio-pci", hasIommuGroup: false };
    expect(assessDevice(device, linkUp, vf, ["iavf", "vfio-pci"]).reason).toBe("IOMMUGroupMissing");
  });

  it("names the first problem an operator would fix: the PF before its link, the link before the driver", () => {
    const down = { ...linkUp, carrier: "0" };
    expect(assessDevice(device, down, { ...onIavf, driver: "" }, ["iavf"]).reason).toBe(
      "PFLinkDown",
    );
    expect(assessDevice(device, { ...down, present: false }, onIavf, ["iavf"]).reason).toBe(
      "PFMissing",
    );
  });
});

describe("pfLinkDown", () => {
  it("trusts carrier, and operstate only when carrier cannot be read (a netdev set down)", () => {
    expect(pfLinkDown({ ...linkUp, carrier: "0", operstate: "up" })).toBe(true);
    expect(pfLinkDown({ ...linkUp, carrier: "1", operstate: "down" })).toBe(false);
    expect(pfLinkDown({ ...linkUp, carrier: undefined, operstate: "down" })).toBe(true);
    expect(pfLinkDown({ ...linkUp, carrier: undefined, operstate: "lowerlayerdown" })).toBe(true);
    // Drivers that cannot judge their link say "unknown": no taint on a guess.
    expect(pfLinkDown({ ...linkUp, carrier: undefined, operstate: "unknown" })).toBe(false);
    expect(pfLinkDown({ ...linkUp, carrier: undefined, operstate: undefined })).toBe(false);
  });
});

describe("boundMessage", () => {
  it("cuts a message to the kubelet's 1,024 characters, marking the cut", () => {
    const cut = boundMessage("x".repeat(5000));
    expect(cut).toHaveLength(MAX_HEALTH_MESSAGE_CHARS);
    expect(cut.endsWith("…")).toBe(true);
    expect(boundMessage("short")).toBe("short");
  });
});

describe("track", () => {
  const debounce = { unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 };
  const healthy: Assessment = { state: "Healthy", message: "" };
  const down: Assessment = { state: "Unhealthy", reason: "PFLinkDown", message: "no link" };

  /** Feeds assessments at the given times; returns the committed state after each. */
  function run(steps: [number, Assessment][]) {
    let tracker;
    const seen: string[] = [];
    for (const [at, assessment] of steps) {
      tracker = track(tracker, "dev", assessment, at, debounce).tracker;
      seen.push(tracker.committed.state);
    }
    return { seen, last: tracker!.committed };
  }

  it("commits a first observation at once, even an unhealthy one", () => {
    expect(run([[0, down]]).last).toEqual({ device: "dev", ...down, sinceMs: 0 });
  });

  it("turns unhealthy once the link stayed down for the debounce time, dated when it went", () => {
    const { seen, last } = run([
      [0, healthy],
      [1_000, down],
      [2_000, down],
      [3_000, down],
    ]);
    expect(seen).toEqual(["Healthy", "Healthy", "Healthy", "Unhealthy"]);
    expect(last.sinceMs).toBe(1_000);
  });

  it("keeps a flapping link unhealthy instead of flipping with it", () => {
    const steps: [number, Assessment][] = [[0, down]];
    for (let at = 1_000; at <= 30_000; at += 1_000) steps.push([at, at % 2_000 ? healthy : down]);
    expect(new Set(run(steps).seen)).toEqual(new Set(["Unhealthy"]));
  });

  it("ignores one short glitch, but turns unhealthy at the third problem within the healthy time", () => {
    const glitch = run([
      [0, healthy],
      [1_000, down],
      [2_000, healthy],
      [15_000, down],
      [16_000, healthy],
    ]);
    expect(new Set(glitch.seen)).toEqual(new Set(["Healthy"]));
    const flapping = run([
      [0, healthy],
      [1_000, down],
      [2_000, healthy],
      [3_000, down],
      [4_000, healthy],
      [5_000, down],
    ]);
    expect(flapping.seen).toEqual([
      "Healthy",
      "Healthy",
      "Healthy",
      "Healthy",
      "Healthy",
      "Unhealthy",
    ]);
    expect(flapping.last.sinceMs).toBe(5_000);
  });

  it("recovers after the link stayed up for the longer healthy time", () => {
    const { seen } = run([
      [0, down],
      [1_000, healthy],
      [10_999, healthy],
      [11_000, healthy],
    ]);
    expect(seen).toEqual(["Unhealthy", "Unhealthy", "Unhealthy", "Healthy"]);
  });
});

describe("taintsOf", () => {
  it("taints each unhealthy device with its reason, dated in whole seconds; nothing else", () => {
    const taints = taintsOf(
      [
        {
          device: "a",
          state: "Unhealthy",
          reason: "PFLinkDown",
          message: "m",
          sinceMs: 1_765_000_123_456,
        },
        { device: "b", state: "Healthy", message: "", sinceMs: 0 },
        { device: "c", state: "Unknown", message: "", sinceMs: 0 },
      ],
      "sriovnetwork.openshift.io",
      "NoSchedule",
    );
    expect([...taints]).toEqual([
      [
        "a",
        [
          {
            key: "sriovnetwork.openshift.io/unhealthy",
            value: "PFLinkDown",
            effect: "NoSchedule",
            timeAdded: "2025-12-06T05:48:43Z",
          },
        ],
      ],
    ]);
  });
});
