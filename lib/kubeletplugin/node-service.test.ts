import { describe, expect, it } from "vitest";
import type { ClaimRef } from "./claim-preparer.js";
import { baseRequestName, prepareResponseOf, unprepareResponseOf } from "./node-service.js";

const a: ClaimRef = { namespace: "ns", name: "claim-a", uid: "uid-a" };
const b: ClaimRef = { namespace: "ns", name: "claim-b", uid: "uid-b" };
const c: ClaimRef = { namespace: "other", name: "claim-c", uid: "uid-c" };

describe("prepareResponseOf", () => {
  it("answers every claim: devices, per-claim error, and a missing result as an error", () => {
    const response = prepareResponseOf(
      [a, b, c],
      new Map([
        [
          "uid-a",
          {
            devices: [
              {
                requestNames: ["vf/intel", "other"],
                poolName: "node-1",
                deviceName: "0000-3b-02-1",
                cdiDeviceIds: ["sriovnetwork.openshift.io/vf=uid-a-0000-3b-02-1"],
              },
            ],
          },
        ],
        ["uid-b", { error: "VF 0000:3b:02.2 is gone" }],
        ["uid-unrequested", { devices: [] }],
      ]),
    );
    expect(response).toEqual({
      claims: {
        "uid-a": {
          devices: [
            {
              request_names: ["vf", "other"],
              pool_name: "node-1",
              device_name: "0000-3b-02-1",
              cdi_device_ids: ["sriovnetwork.openshift.io/vf=uid-a-0000-3b-02-1"],
            },
          ],
          error: "",
        },
        "uid-b": { devices: [], error: "VF 0000:3b:02.2 is gone" },
        "uid-c": {
          devices: [],
          error:
            "driver bug: no prepare result for claim other/claim-c (uid-c); the kubelet retries",
        },
      },
    });
  });

  it("turns an exception into an error on every claim, naming it", () => {
    const response = prepareResponseOf([a, b], new Error("checkpoint unreadable"));
    expect(response.claims["uid-a"]).toEqual({
      devices: [],
      error: "prepare of claim ns/claim-a (uid-a) failed: checkpoint unreadable",
    });
    expect(response.claims["uid-b"]!.error).toBe(
      "prepare of claim ns/claim-b (uid-b) failed: checkpoint unreadable",
    );
  });

  it("does not let an empty error pass as success", () => {
    const response = prepareResponseOf([a], new Map([["uid-a", { error: "" }]]));
    expect(response.claims["uid-a"]!.error).toMatch(/failed without a reason/);
  });
});

describe("unprepareResponseOf", () => {
  it("answers every claim", () => {
    expect(
      unprepareResponseOf(
        [a, b, c],
        new Map([
          ["uid-a", {}],
          ["uid-b", { error: "busy" }],
        ]),
      ),
    ).toEqual({
      claims: {
        "uid-a": { error: "" },
        "uid-b": { error: "busy" },
        "uid-c": {
          error:
            "driver bug: no unprepare result for claim other/claim-c (uid-c); the kubelet retries",
        },
      },
    });
    expect(unprepareResponseOf([c], new Error("boom")).claims["uid-c"]!.error).toBe(
      "unprepare of claim other/claim-c (uid-c) failed: boom",
    );
  });
});

describe("baseRequestName", () => {
  it("reports a subrequest under its request", () => {
    expect(baseRequestName("vf/intel-x710")).toBe("vf");
    expect(baseRequestName("vf")).toBe("vf");
  });
});
