/**
 * The end-to-end suite, in a fixed order: the cluster, each demo scenario, scheduling
 * limits, device health (it upgrades the release and rolls it back), then restarts of the
 * node's parts (which may break what the others need when they find a bug). One file, so
 * the order is the one below whatever vitest's sequencer prefers; the cases share one
 * cluster and its VFs, so nothing runs side by side. What the node held before (a user's
 * pods) is recorded first and left out of every check.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { foundClaimsLost, recordFoundState } from "./support.js";
import "./cases/cluster.js";
import "./cases/vfio-driver.js";
import "./cases/single-vf-claim.js";
import "./cases/multiple-vf-claim.js";
import "./cases/spread-across-pfs.js";
import "./cases/resource-filtering.js";
import "./cases/static-ip-vlan.js";
import "./cases/device-plugin-pods.js";
import "./cases/multus-integration.js";
import "./cases/unschedulable.js";
import "./cases/whole-nic.js";
import "./cases/device-health.js";
import "./cases/restarts.js";
import "./cases/driver-lifecycle.js";

beforeAll(() => {
  recordFoundState();
});

describe("what the node held before the suite", () => {
  it("is still prepared: the suite worked beside it", () => {
    expect(foundClaimsLost()).toEqual([]);
  });
});
