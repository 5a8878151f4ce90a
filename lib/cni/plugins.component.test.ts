import fs from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../util/json.js";
import { CniErrorCode } from "./errors.js";
import { CniExecutor } from "./executor.js";
import { podInterfaceOf } from "./result.js";
import {
  Cleanups,
  PLUGIN_DIRS,
  configList,
  ip,
  linkIn,
  podRuntime,
  staticIpam,
  tryIp,
} from "./testing/real-plugins.js";
import { failure } from "./testing/cni-error.js";

// Real plugins (Debian's containernetworking-plugins) moving real links between network
// namespaces: root only. Link and namespace names are unique to this file, as vitest runs
// files in parallel. hack/cni/emulated-vf needs a Go build: its tests are in
// test/integration/cni-emulated-vf.test.ts.
const NETNS = "cnitst-pod";
const NETNS_PATH = `/var/run/netns/${NETNS}`;
const VETH = "cnitst0";
const VETH_PEER = "cnitst0p";

const hasPlugins = ["host-device", "static", "tuning"].every((plugin) =>
  PLUGIN_DIRS.some((dir) => fs.existsSync(path.join(dir, plugin))),
);

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function vethPair(): string {
  ip("link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER);
  cleanups.push(() => tryIp("link", "delete", VETH_PEER));
  return linkIn(null, VETH)!.address;
}

function executor(pluginDirs = PLUGIN_DIRS): CniExecutor {
  return new CniExecutor({
    pluginDirs,
    cacheDir: cleanups.tempDir("cni-plugins-cache-"),
    timeoutMs: 30_000,
    logger: pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" }),
  });
}

const runtime = podRuntime("cnitst-container", NETNS_PATH);

const list = (plugins: JsonObject[]) => configList("cnitst-net", plugins);

describe.skipIf(process.getuid?.() !== 0 || !hasPlugins)("CniExecutor with real plugins", () => {
  it("host-device + tuning: ADD moves the device in with its IP and MAC, CHECK passes, DEL moves it back", async () => {
    cleanups.netns(NETNS);
    const originalMac = vethPair();
    const cni = executor();
    const config = list([
      { type: "host-device", device: VETH, ipam: staticIpam("10.99.0.5/24") },
      { type: "tuning", capabilities: { mac: true } },
    ]);
    const podMac = "02:99:00:00:00:05";
    const withMac = { ...runtime, capabilityArgs: { mac: podMac } };

    const result = await cni.add(config, withMac);

    expect(linkIn(null, VETH)).toBeUndefined();
    const inPod = linkIn(NETNS, "net1");
    expect(inPod?.address).toBe(podMac);
    expect(inPod?.addr_info).toEqual([
      expect.objectContaining({ family: "inet", local: "10.99.0.5", prefixlen: 24 }),
    ]);
    expect(podInterfaceOf(result, "net1")).toEqual({
      interfaceName: "net1",
      ips: ["10.99.0.5/24"],
      hardwareAddress: podMac,
    });

    await cni.check(config, withMac);

    await cni.del(config, withMac);
    expect(linkIn(NETNS, "net1")).toBeUndefined();
    // tuning puts the MAC back on DEL.
    expect(linkIn(null, VETH)?.address).toBe(originalMac);

    // Once the pod's namespace is gone, DEL is still fine.
    ip("netns", "delete", NETNS);
    await cni.del(config, withMac);
    expect(linkIn(null, VETH)).toBeDefined();
  });

  it("a chained plugin's failure, then DEL, leaves the device in the host namespace", async () => {
    cleanups.netns(NETNS);
    vethPair();
    const cni = executor();
    const config = list([
      { type: "host-device", device: VETH, ipam: staticIpam("10.99.0.5/24") },
      { type: "tuning", sysctl: { "net.ipv4.conf.net1.no_such_setting": "1" } },
    ]);

    const error = await failure(cni.add(config, runtime));

    expect(error).toMatchObject({ plugin: "tuning", command: "ADD" });
    expect(error.msg).toMatch(/no_such_setting/);
    // host-device moved the device before tuning failed; the DEL the pod-network step runs
    // after a failed ADD brings it back.
    expect(linkIn(NETNS, "net1")).toBeDefined();
    await cni.del(config, runtime);
    expect(linkIn(null, VETH)).toBeDefined();
    expect(linkIn(NETNS, "net1")).toBeUndefined();
  });

  it("a plugin's own error message, and a missing plugin, reach the caller", async () => {
    cleanups.netns(NETNS);
    const cni = executor();
    const bad = await failure(cni.add(list([{ type: "host-device" }]), runtime));
    expect(bad).toMatchObject({ plugin: "host-device", code: 999 });
    expect(bad.msg).toBe('specify either "device", "hwaddr", "kernelpath" or "pciBusID"');

    const missing = await failure(cni.add(list([{ type: "sriov" }]), runtime));
    expect(missing.code).toBe(CniErrorCode.PLUGIN_NOT_FOUND);
    expect(missing.message).toContain(`plugin binary not found in ${PLUGIN_DIRS.join(", ")}`);
  });
});
