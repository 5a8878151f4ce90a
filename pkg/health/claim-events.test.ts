import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { EventRecord } from "../../lib/kube/events.js";
import { eventObject } from "../../lib/kube/events.js";
import { postClaimEventsOnHealthChange } from "./claim-events.js";
import type { DeviceHealth, HealthSource } from "./model.js";

/** A HealthSource the test pushes changes through. */
function pushedSource() {
  const listeners = new Set<(changed: readonly DeviceHealth[]) => void>();
  const source: HealthSource = {
    current: () => [],
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const push = (...changed: DeviceHealth[]) => {
    for (const listener of listeners) listener(changed);
  };
  return { source, push };
}

const healthy = (device: string): DeviceHealth => ({
  device,
  state: "Healthy",
  message: "",
  sinceMs: 0,
});
const down = (device: string): DeviceHealth => ({
  device,
  state: "Unhealthy",
  reason: "PFLinkDown",
  message: "PF ens1f0 has no link",
  sinceMs: 0,
});

describe("postClaimEventsOnHealthChange", () => {
  it("posts a Warning on the claims holding a device that turns unhealthy, a Normal when it recovers, nothing for news-free healthy devices", async () => {
    const { source, push } = pushedSource();
    const events: EventRecord[] = [];
    const claim = { namespace: "team-a", name: "pod-net-x", uid: "uid-1" };
    postClaimEventsOnHealthChange({
      source,
      holders: () => new Map([["0000-3b-02-1", [claim]]]),
      record: async (event) => {
        events.push(event);
      },
      driverName: "sriovnetwork.openshift.io",
      nodeName: "node-a",
      logger: pino({ level: "silent" }),
    });
    push(healthy("0000-3b-02-1"), healthy("0000-3b-02-2"));
    expect(events).toEqual([]);
    push(down("0000-3b-02-1"), down("0000-3b-02-2"));
    push(healthy("0000-3b-02-1"));
    expect(events.map((e) => [e.regarding.name, e.type, e.reason])).toEqual([
      ["pod-net-x", "Warning", "DeviceUnhealthy"],
      ["pod-net-x", "Normal", "DeviceHealthy"],
    ]);
    expect(events[0]!.note).toBe(
      "device 0000-3b-02-1 on node node-a is unhealthy (PFLinkDown): PF ens1f0 has no link",
    );
    expect(events[0]!.regarding).toEqual({
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaim",
      ...claim,
    });
  });

  it("keeps going when the API refuses an event", async () => {
    const { source, push } = pushedSource();
    let calls = 0;
    postClaimEventsOnHealthChange({
      source,
      holders: () => new Map([["d", [{ namespace: "n", name: "c", uid: "u" }]]]),
      record: () => {
        calls++;
        return Promise.reject(new Error("forbidden"));
      },
      driverName: "x",
      nodeName: "n",
      logger: pino({ level: "silent" }),
    });
    push(down("d"));
    push(healthy("d"));
    await Promise.resolve();
    expect(calls).toBe(2);
  });
});

describe("eventObject", () => {
  it("makes an events.k8s.io/v1 Event with a microsecond eventTime and a note of at most 1 kB", () => {
    const event = eventObject(
      {
        regarding: { apiVersion: "v1", kind: "Pod", namespace: "n", name: "p", uid: "u" },
        type: "Warning",
        reason: "R",
        note: "é".repeat(2000),
        action: "A",
        reportingController: "c",
        reportingInstance: "i",
      },
      new Date("2026-12-04T22:00:00.123Z"),
    );
    expect(event["eventTime"]).toBe("2026-12-04T22:00:00.123000Z");
    expect(Buffer.byteLength(event["note"] as string)).toBeLessThanOrEqual(1024);
    expect(event["metadata"]).toMatchObject({
      namespace: "n",
      name: expect.stringMatching(/^p\.[0-9a-f]{16}$/),
    });
  });
});
