import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { minimumCdiVersion, qualifiedDeviceName } from "./spec.js";
import { CdiSpecStore } from "./store.js";

const KIND = "sriovnetwork.openshift.io/vf";

describe("CDI specs", () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "cdi-"))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("writes one file per claim, lists and removes it idempotently", () => {
    const store = new CdiSpecStore(path.join(root, "cdi"), KIND);
    const spec = {
      cdiVersion: "0.5.0",
      kind: KIND,
      devices: [{ name: "u1-0000-3b-02-0", containerEdits: { env: ["A=1"] } }],
    };
    const file = store.write("u1", spec);
    expect(path.basename(file)).toBe("sriovnetwork.openshift.io-vf_u1.json");
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual(spec);
    expect(store.claims()).toEqual(["u1"]);
    store.remove("u1");
    store.remove("u1");
    expect(store.exists("u1")).toBe(false);
    expect(fs.readdirSync(path.join(root, "cdi"))).toEqual([]);
  });

  it("reads the device ids of a spec of ours, and none of a file that is not one", () => {
    const dir = path.join(root, "cdi");
    const store = new CdiSpecStore(dir, KIND);
    store.write("u1", {
      cdiVersion: "0.5.0",
      kind: KIND,
      devices: [{ name: "0000:3b:02.0", containerEdits: { env: ["A=1"] } }],
    });
    expect(store.deviceIds("u1")).toEqual([`${KIND}=0000:3b:02.0`]);
    expect(store.deviceIds("missing")).toEqual([]);
    const at = (uid: string) => path.join(dir, `sriovnetwork.openshift.io-vf_${uid}.json`);
    fs.writeFileSync(at("half"), '{ "kind": ');
    fs.writeFileSync(at("other"), JSON.stringify({ kind: "x.io/y", devices: [{ name: "a" }] }));
    fs.writeFileSync(at("big"), " ".repeat((1 << 20) + 1));
    for (const uid of ["half", "other", "big"]) expect(store.deviceIds(uid), uid).toEqual([]);
  });

  it("never names a file outside its directory, whatever the claim UID", () => {
    const store = new CdiSpecStore("/var/run/cdi", "sriovnetwork.openshift.io/vf");
    expect(store.fileFor("uid-a")).toBe("/var/run/cdi/sriovnetwork.openshift.io-vf_uid-a.json");
    for (const uid of ["../../etc/x", "a/b", "a\0b", ""]) {
      expect(() => store.fileFor(uid), JSON.stringify(uid)).toThrow(/not a claim UID/);
    }
  });

  it("lists nothing when the CDI directory does not exist yet", () => {
    expect(new CdiSpecStore(path.join(root, "missing"), KIND).claims()).toEqual([]);
  });

  it("picks the lowest CDI version that expresses the spec", () => {
    expect(
      minimumCdiVersion({ kind: KIND, devices: [{ name: "a", containerEdits: { env: ["A=1"] } }] }),
    ).toBe("0.3.0");
    expect(minimumCdiVersion({ kind: KIND, devices: [{ name: "1a", containerEdits: {} }] })).toBe(
      "0.5.0",
    );
    expect(
      minimumCdiVersion({
        kind: KIND,
        devices: [
          {
            name: "a",
            containerEdits: { deviceNodes: [{ path: "/dev/vfio/1", hostPath: "/r/dev/vfio/1" }] },
          },
        ],
      }),
    ).toBe("0.5.0");
    expect(qualifiedDeviceName(KIND, "u1-dev")).toBe("sriovnetwork.openshift.io/vf=u1-dev");
  });
});
