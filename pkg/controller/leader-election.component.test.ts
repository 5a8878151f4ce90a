import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KubeApiError, type KubeClient, type KubeRequest } from "../../lib/kube/client.js";
import {
  decideLease,
  formatMicroTime,
  LeaderElector,
  nextLeaseRecord,
  releasedLeaseRecord,
  stillLeading,
  type LeaseRecord,
} from "./leader-election.js";

const logger = pino({ level: "silent" });
const NOW = new Date("2026-03-04T05:06:07.891Z");

describe("decideLease", () => {
  const held = (holderIdentity: string, observedAtMs: number, leaseDurationSeconds = 15) => ({
    record: { holderIdentity, leaseDurationSeconds },
    observedAtMs,
  });

  it("creates a lease nobody has written", () => {
    expect(decideLease(undefined, "me", 0, 15)).toEqual({ action: "create" });
  });

  it("renews its own lease", () => {
    expect(decideLease(held("me", 0), "me", 60_000, 15)).toEqual({ action: "renew" });
  });

  it("acquires a released lease at once", () => {
    expect(decideLease({ record: {}, observedAtMs: 0 }, "me", 0, 15)).toEqual({
      action: "acquire",
      because: "released",
    });
    expect(decideLease(held("", 0), "me", 0, 15)).toMatchObject({ action: "acquire" });
  });

  it("follows a holder until the lease's own duration has passed since the record last changed", () => {
    expect(decideLease(held("other", 1_000, 10), "me", 6_000, 15)).toEqual({
      action: "follow",
      holder: "other",
      expiresInMs: 5_000,
    });
    expect(decideLease(held("other", 1_000, 10), "me", 11_000, 15)).toEqual({
      action: "acquire",
      because: "expired",
    });
  });

  it("falls back to its own duration when the record has none", () => {
    const observed = { record: { holderIdentity: "other" }, observedAtMs: 0 };
    expect(decideLease(observed, "me", 14_999, 15)).toMatchObject({ action: "follow" });
    expect(decideLease(observed, "me", 15_000, 15)).toMatchObject({ action: "acquire" });
  });
});

describe("lease records", () => {
  it("creates with no transitions, and acquires counting one more", () => {
    const created = nextLeaseRecord(undefined, "create", "a", 15, NOW);
    expect(created).toEqual({
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTime: "2026-03-04T05:06:07.891000Z",
      renewTime: "2026-03-04T05:06:07.891000Z",
      leaseTransitions: 0,
    });
    const later = new Date(NOW.getTime() + 20_000);
    expect(nextLeaseRecord(created, "acquire", "b", 15, later)).toEqual({
      holderIdentity: "b",
      leaseDurationSeconds: 15,
      acquireTime: formatMicroTime(later),
      renewTime: formatMicroTime(later),
      leaseTransitions: 1,
    });
  });

  it("renews keeping the acquire time and the transition count", () => {
    const current: LeaseRecord = {
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTime: "2026-01-01T00:00:00.000000Z",
      renewTime: "2026-01-01T00:00:05.000000Z",
      leaseTransitions: 3,
    };
    expect(nextLeaseRecord(current, "renew", "a", 15, NOW)).toEqual({
      ...current,
      renewTime: "2026-03-04T05:06:07.891000Z",
    });
  });

  it("releases by clearing the holder", () => {
    const current = nextLeaseRecord(undefined, "create", "a", 15, NOW);
    const released = releasedLeaseRecord(current, NOW);
    expect(released).not.toHaveProperty("holderIdentity");
    expect(released).toMatchObject({ leaseDurationSeconds: 1, leaseTransitions: 0 });
  });

  it("writes MicroTime with six fractional digits", () => {
    expect(formatMicroTime(new Date("2026-01-01T00:00:00Z"))).toBe("2026-01-01T00:00:00.000000Z");
  });
});

describe("stillLeading", () => {
  it("is true only within the renew deadline of the last renewal", () => {
    expect(stillLeading(1_000, 10_999, 10_000)).toBe(true);
    expect(stillLeading(1_000, 11_000, 10_000)).toBe(false);
    expect(stillLeading(Number.NEGATIVE_INFINITY, 0, 10_000)).toBe(false);
  });
});

interface StoredLease {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: LeaseRecord;
}

/** One Lease behind the API's optimistic concurrency: writes must name the current resourceVersion. */
class FakeLeaseApi {
  lease: StoredLease | undefined;
  down = false;
  /** Reads of the lease so far: each elector reads it once per retry period. */
  reads = 0;
  private version = 0;

  readonly client = {
    request: (request: KubeRequest): Promise<unknown> => Promise.resolve(this.handle(request)),
  } as unknown as KubeClient;

  hold(holderIdentity: string, leaseDurationSeconds: number): void {
    this.lease = {
      metadata: { name: "lease", namespace: "ns", resourceVersion: String(++this.version) },
      spec: { holderIdentity, leaseDurationSeconds, renewTime: formatMicroTime(new Date()) },
    };
  }

  private handle(request: KubeRequest): unknown {
    if (this.down) throw new KubeApiError(503, "ServiceUnavailable", "down");
    const body = request.body as StoredLease | undefined;
    switch (request.method) {
      case "GET":
        this.reads++;
        if (this.lease === undefined) throw new KubeApiError(404, "NotFound", "no lease");
        return structuredClone(this.lease);
      case "POST":
        if (this.lease !== undefined) throw new KubeApiError(409, "AlreadyExists", "exists");
        return this.store(body!);
      case "PUT":
        if (body!.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
          throw new KubeApiError(409, "Conflict", "stale resourceVersion");
        }
        return this.store(body!);
      default:
        throw new Error(`unexpected ${request.method}`);
    }
  }

  private store(body: StoredLease): StoredLease {
    this.lease = structuredClone({
      ...body,
      metadata: { ...body.metadata, resourceVersion: String(++this.version) },
    });
    return structuredClone(this.lease);
  }
}

describe("LeaderElector", () => {
  const electors: LeaderElector[] = [];
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((elector) => elector.stop()));
  });

  function elector(
    api: FakeLeaseApi,
    identity: string,
    events: string[] = [],
    leaseDurationSeconds = 1,
  ) {
    const created = new LeaderElector(api.client, {
      namespace: "ns",
      name: "lease",
      identity,
      logger,
      leaseDurationSeconds,
      retryPeriodMs: 20,
      renewDeadlineMs: 300,
      onStartedLeading: () => events.push(`${identity} leads`),
      onStoppedLeading: () => events.push(`${identity} stops`),
    });
    electors.push(created);
    return created;
  }

  it("elects exactly one of two candidates, and hands over on a clean stop", async () => {
    const api = new FakeLeaseApi();
    const events: string[] = [];
    // A lease far longer than the test: the follower can only lead if the leader releases it.
    const a = elector(api, "a", events, 3600);
    const b = elector(api, "b", events, 3600);
    let bothLed = false;
    const watch = setInterval(() => (bothLed ||= a.isLeader && b.isLeader), 2);
    a.start();
    b.start();
    await vi.waitFor(() => expect(a.isLeader || b.isLeader).toBe(true));
    // Several retry periods of both electors: the follower has looked at the held lease again.
    const readsWhenElected = api.reads;
    await vi.waitFor(() => expect(api.reads).toBeGreaterThanOrEqual(readsWhenElected + 6));
    const [leader, follower] = a.isLeader ? [a, b] : [b, a];
    expect(follower.isLeader).toBe(false);

    await leader.stop();
    await vi.waitFor(() => expect(follower.isLeader).toBe(true), { timeout: 10_000 });
    clearInterval(watch);
    expect(bothLed).toBe(false);
    expect(api.lease?.spec.leaseTransitions).toBe(1);
    expect(events.filter((e) => e.endsWith("leads"))).toHaveLength(2);
  });

  it("takes over a lease whose holder stopped renewing only after it expires", async () => {
    const api = new FakeLeaseApi();
    api.hold("crashed", 1);
    const candidate = elector(api, "b");
    const started = Date.now();
    candidate.start();
    await vi.waitFor(() => expect(candidate.isLeader).toBe(true), { timeout: 3_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(api.lease?.spec.holderIdentity).toBe("b");
  });

  it("steps down when it cannot renew within the deadline, and leads again once it can", async () => {
    const api = new FakeLeaseApi();
    const events: string[] = [];
    const leader = elector(api, "a", events);
    leader.start();
    await vi.waitFor(() => expect(leader.isLeader).toBe(true));
    api.down = true;
    await vi.waitFor(() => expect(leader.isLeader).toBe(false));
    await vi.waitFor(() => expect(events).toEqual(["a leads", "a stops"]));
    api.down = false;
    await vi.waitFor(() => expect(leader.isLeader).toBe(true));
  });

  it("steps down at once when another replica took the lease", async () => {
    const api = new FakeLeaseApi();
    const leader = elector(api, "a");
    leader.start();
    await vi.waitFor(() => expect(leader.isLeader).toBe(true));
    api.hold("usurper", 15);
    await vi.waitFor(() => expect(leader.isLeader).toBe(false));
  });

  it("refuses a renew deadline that is not shorter than the lease", () => {
    expect(
      () =>
        new LeaderElector(new FakeLeaseApi().client, {
          namespace: "ns",
          name: "lease",
          identity: "a",
          logger,
          leaseDurationSeconds: 5,
          renewDeadlineMs: 5_000,
          onStartedLeading: () => undefined,
          onStoppedLeading: () => undefined,
        }),
    ).toThrow(/must be shorter than the lease/);
  });
});
