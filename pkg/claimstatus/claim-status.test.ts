import { pino } from "pino";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { KubeRequest } from "../../lib/kube/client.js";
import { KubeApiError } from "../../lib/kube/client.js";
import type { DeviceStatus } from "./claim-status.js";
import {
  ClaimStatusWriter,
  claimPath,
  deviceStatusesOf,
  withDeviceStatuses,
} from "./claim-status.js";
import { preparedClaim, preparedVf } from "../prepare/testing/fixtures.js";

const DRIVER = "sriovnetwork.openshift.io";
const REF = { namespace: "ns", name: "claim", uid: "uid-1" };
const PATH = "/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims/claim";
const logger = pino({ level: "silent" });

const claim = preparedClaim({
  devices: [
    preparedVf({ pciAddress: "0000:3b:02.0", ifName: "net1" }),
    preparedVf({
      pciAddress: "0000:3b:02.1",
      targetDriver: "vfio-pci",
      ifName: "net2",
      netAttachDef: { namespace: "nets", name: "sriov" },
    }),
  ],
});
const ours = deviceStatusesOf(claim, DRIVER);

describe("claimPath", () => {
  it("keeps a namespace or name inside its path segment", () => {
    expect(claimPath({ namespace: "ns", name: "c" })).toBe(
      "/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims/c",
    );
    expect(claimPath({ namespace: "../../../api/v1/secrets", name: "a/b?c" })).toBe(
      "/apis/resource.k8s.io/v1/namespaces/..%2F..%2F..%2Fapi%2Fv1%2Fsecrets/resourceclaims/a%2Fb%3Fc",
    );
  });
});

describe("deviceStatusesOf", () => {
  it("describes what was applied to each VF", () => {
    expect(ours).toEqual([
      {
        driver: DRIVER,
        pool: "node-a",
        device: "0000-3b-02-0",
        data: { pciAddress: "0000:3b:02.0", driver: "iavf", ifName: "net1" },
      },
      {
        driver: DRIVER,
        pool: "node-a",
        device: "0000-3b-02-1",
        data: {
          pciAddress: "0000:3b:02.1",
          driver: "vfio-pci",
          ifName: "net2",
          netAttachDefNamespace: "nets",
          netAttachDefName: "sriov",
        },
      },
    ]);
  });
});

describe("withDeviceStatuses", () => {
  it("keeps other entries and other writers' fields, replaces our data, appends the rest", () => {
    const other: DeviceStatus = {
      driver: "gpu.example.com",
      pool: "p",
      device: "g0",
      data: { x: 1 },
    };
    const stale: DeviceStatus = {
      driver: DRIVER,
      pool: "node-a",
      device: "0000-3b-02-1",
      data: { old: true },
      networkData: { interfaceName: "net2", ips: ["10.0.0.2/24"] },
    };
    expect(withDeviceStatuses([other, stale], ours)).toEqual([
      other,
      { ...ours[1], networkData: stale["networkData"] },
      ours[0],
    ]);
  });

  it("does not mistake a shared device's entry for ours", () => {
    const shared: DeviceStatus = { ...ours[0]!, shareID: "abc", data: { other: true } };
    expect(withDeviceStatuses([shared], ours)).toEqual([shared, ...ours]);
  });
});

describe("ClaimStatusWriter", () => {
  /** A claim store answering GET and merge-patching /status, failing as `failures` says. */
  function fakeApi(failures: (Error | undefined)[] = [], uid = "uid-1") {
    const requests: KubeRequest[] = [];
    const stored = {
      metadata: { uid, resourceVersion: "1" },
      status: { devices: [] as DeviceStatus[] },
    };
    const client = {
      request: <T>(request: KubeRequest): Promise<T> => {
        requests.push(request);
        const failure = failures.shift();
        if (failure) return Promise.reject(failure);
        if (request.method === "PATCH") {
          const patch = request.body as {
            metadata: { resourceVersion: string };
            status: { devices: DeviceStatus[] };
          };
          if (patch.metadata.resourceVersion !== stored.metadata.resourceVersion) {
            return Promise.reject(new KubeApiError(409, "Conflict", "modified"));
          }
          stored.status.devices = patch.status.devices;
          stored.metadata.resourceVersion = String(Number(stored.metadata.resourceVersion) + 1);
        }
        return Promise.resolve(structuredClone(stored) as T);
      },
    };
    const writer = new ClaimStatusWriter(client, {
      driverName: DRIVER,
      logger,
      retryDelaysMs: [5, 5],
    });
    const methods = () => requests.map((request) => request.method);
    return { writer, requests, stored, methods };
  }

  it("merge-patches the device list with the resourceVersion it read, and skips a write that changes nothing", async () => {
    const api = fakeApi();
    api.writer.write(REF, ours);
    await api.writer.settled();
    expect(api.requests[1]).toMatchObject({
      method: "PATCH",
      path: `${PATH}/status`,
      contentType: "application/merge-patch+json",
      body: { metadata: { resourceVersion: "1" }, status: { devices: ours } },
    });
    expect(api.stored.status.devices).toEqual(ours);
    api.writer.write(REF, ours);
    await api.writer.settled();
    expect(api.methods()).toEqual(["GET", "PATCH", "GET"]);
  });

  it("re-reads at once after a conflict", async () => {
    const api = fakeApi([
      undefined,
      new KubeApiError(409, "Conflict", "the object has been modified"),
    ]);
    api.writer.write(REF, ours);
    await api.writer.settled();
    expect(api.methods()).toEqual(["GET", "PATCH", "GET", "PATCH"]);
    expect(api.stored.status.devices).toEqual(ours);
  });

  it("builds on the claim as the caller read it (no GET), and re-reads when it changed since", async () => {
    const api = fakeApi();
    api.writer.write(REF, ours, { metadata: { uid: "uid-1", resourceVersion: "1" } });
    await api.writer.settled();
    expect(api.methods()).toEqual(["PATCH"]);
    expect(api.stored.status.devices).toEqual(ours);

    const changed = fakeApi();
    changed.stored.metadata.resourceVersion = "7";
    changed.writer.write(REF, ours, { metadata: { uid: "uid-1", resourceVersion: "1" } });
    await changed.writer.settled();
    expect(changed.methods()).toEqual(["PATCH", "GET", "PATCH"]);
    expect(changed.stored.status.devices).toEqual(ours);
  });

  it("leaves a re-created claim alone", async () => {
    const api = fakeApi([], "uid-new");
    api.writer.write(REF, ours);
    await api.writer.settled();
    expect(api.methods()).toEqual(["GET"]);
  });

  it("retries a failed write in the background and gives up after the last delay", async () => {
    const api = fakeApi([
      new Error("connection refused"),
      new KubeApiError(500, "InternalError", "etcd"),
      new KubeApiError(503, "ServiceUnavailable", "busy"),
    ]);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    api.writer.write(REF, ours);
    await expect(api.writer.settled()).resolves.toBeUndefined();
    expect(api.requests).toHaveLength(1);
    await vi.runAllTimersAsync();
    expect(api.requests).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
    expect(api.stored.status.devices).toEqual([]);
  });

  it("does not retry a gone or refused claim, and stop() drops pending retries", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const gone = fakeApi([new KubeApiError(404, "NotFound", "gone")]);
    gone.writer.write(REF, ours);
    await gone.writer.settled();
    const invalid = fakeApi([undefined, new KubeApiError(422, "Invalid", "not allocated")]);
    invalid.writer.write(REF, ours);
    await invalid.writer.settled();
    const stopped = fakeApi([new Error("down")]);
    stopped.writer.write(REF, ours);
    await stopped.writer.settled();
    expect(vi.getTimerCount()).toBe(1);
    stopped.writer.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.runAllTimersAsync();
    expect([gone.methods(), invalid.methods(), stopped.methods()]).toEqual([
      ["GET"],
      ["GET", "PATCH"],
      ["GET"],
    ]);
  });
});
