import { describe, expect, it } from "vitest";
import type { ConsumerRef, ResourceClaim } from "./allocation.js";
import { baseRequestName, nodeAllocationOf } from "./allocation.js";

const DRIVER = "sriovnetwork.openshift.io";
const OPTIONS = { driverName: DRIVER, nodeName: "node-a" };
const REF = { namespace: "ns", name: "claim", uid: "uid-1" };

function claim(status: ResourceClaim["status"], uid = "uid-1"): ResourceClaim {
  return { metadata: { namespace: "ns", name: "claim", uid }, status };
}

const allocated = (
  results: { driver?: string; pool?: string; device?: string; request?: string }[],
  reservedFor: ConsumerRef[] = [{ resource: "pods", name: "pod", uid: "pod-1" }],
) =>
  claim({
    allocation: {
      devices: {
        results: results.map((r) => ({
          driver: r.driver ?? DRIVER,
          pool: r.pool ?? "node-a",
          device: r.device ?? "0000-3b-02-0",
          request: r.request ?? "vf",
        })),
      },
    },
    reservedFor,
  });

describe("nodeAllocationOf", () => {
  it("takes our driver's results, the configs and the pods the claim is reserved for", () => {
    const allocation = nodeAllocationOf(
      allocated(
        [
          { device: "0000-3b-02-0" },
          { driver: "gpu.example.com", pool: "x" },
          { device: "0000-3b-02-1" },
        ],
        [
          { resource: "pods", name: "a", uid: "pod-a" },
          { apiGroup: "example.com", resource: "pods", name: "b", uid: "not-a-pod" },
          { resource: "pods", name: "c", uid: "pod-c" },
        ],
      ),
      REF,
      OPTIONS,
    );
    expect(allocation.results.map((r) => r.device)).toEqual(["0000-3b-02-0", "0000-3b-02-1"]);
    expect(allocation.podUids).toEqual(["pod-a", "pod-c"]);
    expect(allocation.configs).toEqual([]);
  });

  it("refuses a re-created claim, an unallocated one, and one without our devices", () => {
    expect(() => nodeAllocationOf(claim({}, "uid-2"), REF, OPTIONS)).toThrow(
      /has UID uid-2, not uid-1 as the kubelet asked: the claim was deleted and re-created/,
    );
    expect(() => nodeAllocationOf(claim({}), REF, OPTIONS)).toThrow(
      "ResourceClaim ns/claim is not allocated",
    );
    expect(() =>
      nodeAllocationOf(allocated([{ driver: "gpu.example.com" }]), REF, OPTIONS),
    ).toThrow(`ResourceClaim ns/claim has no device of driver ${DRIVER} allocated`);
  });

  it("refuses devices from another node's pool and a claim reserved for no pod", () => {
    expect(() => nodeAllocationOf(allocated([{ pool: "node-b" }]), REF, OPTIONS)).toThrow(
      /device 0000-3b-02-0 is allocated from pool node-b, but this is node node-a/,
    );
    expect(() => nodeAllocationOf(allocated([{}], []), REF, OPTIONS)).toThrow(
      /is not reserved for any pod/,
    );
  });

  it("names subrequests by their main request", () => {
    expect(baseRequestName("dpdk/intel")).toBe("dpdk");
    expect(baseRequestName("vf")).toBe("vf");
  });
});
