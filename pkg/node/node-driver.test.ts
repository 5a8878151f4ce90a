import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { ClaimPreparer, ClaimRef } from "../../lib/kubeletplugin/index.js";
import { NodeDriver } from "./node-driver.js";

const never = new AbortController().signal;
const claim: ClaimRef = { namespace: "ns", name: "c", uid: "u1" };

/** Our preparer interface, recording the calls in order. */
function recordingPreparer(calls: string[]): ClaimPreparer {
  return {
    prepare: (claims) => {
      calls.push(`prepare ${claims.map((c) => c.uid).join(",")}`);
      return Promise.resolve(new Map([[claims[0]!.uid, { devices: [] }]]));
    },
    unprepare: (claims) => {
      calls.push(`unprepare ${claims.map((c) => c.uid).join(",")}`);
      return Promise.resolve(new Map(claims.map((c) => [c.uid, {}])));
    },
  };
}

describe("NodeDriver", () => {
  it("detaches a claim's pod networks before it unprepares the claim", async () => {
    const calls: string[] = [];
    const driver = new NodeDriver(
      recordingPreparer(calls),
      () => ({
        detachClaim: async (uid) => {
          calls.push(`detach ${uid}`);
        },
      }),
      pino({ level: "silent" }),
    );
    await driver.prepare([claim], never);
    expect(await driver.unprepare([claim], never)).toEqual(new Map([["u1", {}]]));
    expect(calls).toEqual(["prepare u1", "detach u1", "unprepare u1"]);
  });

  it("unprepares even when the detach fails, and without a pod-network step", async () => {
    const calls: string[] = [];
    const failing = new NodeDriver(
      recordingPreparer(calls),
      () => ({ detachClaim: () => Promise.reject(new Error("netns gone")) }),
      pino({ level: "silent" }),
    );
    expect(await failing.unprepare([claim], never)).toEqual(new Map([["u1", {}]]));
    const withoutNri = new NodeDriver(
      recordingPreparer(calls),
      () => undefined,
      pino({ level: "silent" }),
    );
    await withoutNri.unprepare([claim], never);
    expect(calls).toEqual(["unprepare u1", "unprepare u1"]);
  });
});
