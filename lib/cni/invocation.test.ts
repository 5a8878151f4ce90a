import { describe, expect, it } from "vitest";
import type { CniConfigList } from "./config.js";
import {
  cacheKeyOf,
  cniArgsOf,
  interfaceNameProblem,
  pluginEnv,
  pluginRequest,
  requestProblem,
  runtimeConfigOf,
  type CniRuntime,
} from "./invocation.js";

const runtime: CniRuntime = {
  containerId: "0b3e6a2c-pod",
  netns: "/var/run/netns/pod",
  ifName: "net1",
  args: { K8S_POD_NAMESPACE: "ns", K8S_POD_NAME: "pod-0" },
};

// The spec's example list (section 1), with a VF's deviceID.
const list: CniConfigList = {
  cniVersion: "1.0.0",
  name: "dbnet",
  plugins: [
    {
      type: "sriov",
      deviceID: "0000:3b:02.1",
      ipam: { type: "host-local", subnet: "10.1.0.0/16" },
    },
    { type: "tuning", capabilities: { mac: true, ips: false }, sysctl: { "net.core.x": "1" } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

describe("pluginRequest", () => {
  it("gives each plugin the list's version and name, and nothing of the runtime's it did not ask for", () => {
    expect(pluginRequest(list, 0, undefined, { mac: "02:00:00:00:00:09" })).toEqual({
      cniVersion: "1.0.0",
      name: "dbnet",
      type: "sriov",
      deviceID: "0000:3b:02.1",
      ipam: { type: "host-local", subnet: "10.1.0.0/16" },
    });
  });

  it("passes declared capability args as runtimeConfig and drops capabilities", () => {
    const prevResult = { cniVersion: "1.0.0", interfaces: [{ name: "net1" }] };
    expect(
      pluginRequest(list, 1, prevResult, { mac: "02:00:00:00:00:09", ips: ["10.1.0.5/16"] }),
    ).toEqual({
      cniVersion: "1.0.0",
      name: "dbnet",
      type: "tuning",
      sysctl: { "net.core.x": "1" },
      runtimeConfig: { mac: "02:00:00:00:00:09" },
      prevResult,
    });
  });

  it("overrides a plugin's own cniVersion and name, and never passes a stale prevResult", () => {
    const single: CniConfigList = {
      cniVersion: "0.4.0",
      name: "net",
      plugins: [{ cniVersion: "0.3.1", name: "other", type: "sriov", prevResult: { old: true } }],
    };
    expect(pluginRequest(single, 0, undefined, undefined)).toEqual({
      cniVersion: "0.4.0",
      name: "net",
      type: "sriov",
    });
  });

  it("leaves a configured runtimeConfig when no capability arg applies", () => {
    const configured: CniConfigList = {
      ...list,
      plugins: [{ type: "x", runtimeConfig: { fixed: 1 }, capabilities: { mac: true } }],
    };
    expect(pluginRequest(configured, 0, undefined, undefined)["runtimeConfig"]).toEqual({
      fixed: 1,
    });
    expect(pluginRequest(configured, 0, undefined, { mac: "m" })["runtimeConfig"]).toEqual({
      mac: "m",
    });
  });
});

describe("runtimeConfigOf", () => {
  it("is the union of true capabilities and provided args", () => {
    expect(runtimeConfigOf({ a: true, b: true, c: false }, { a: 1, c: 3, d: 4 })).toEqual({ a: 1 });
    expect(runtimeConfigOf(undefined, { a: 1 })).toEqual({});
    expect(runtimeConfigOf({ a: true }, undefined)).toEqual({});
    expect(runtimeConfigOf({ a: "yes" }, { a: 1 })).toEqual({});
  });
});

describe("pluginEnv", () => {
  it("sets the protocol parameters over the daemon's environment without its CNI_* variables", () => {
    const env = pluginEnv(
      { PATH: "/usr/bin", CNI_NETNS: "/stale", CNI_PATH: "/stale", HOME: undefined },
      { command: "ADD", runtime, pluginDirs: ["/opt/cni/bin", "/usr/lib/cni"] },
    );
    expect(env).toEqual({
      PATH: "/usr/bin",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "0b3e6a2c-pod",
      CNI_NETNS: "/var/run/netns/pod",
      CNI_IFNAME: "net1",
      CNI_ARGS: "IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod-0",
      CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
    });
  });

  it("leaves CNI_NETNS out when asked or empty, and everything per attachment out for VERSION", () => {
    expect(
      pluginEnv({}, { command: "DEL", runtime, withNetns: false, pluginDirs: [] }),
    ).not.toHaveProperty("CNI_NETNS");
    expect(
      pluginEnv({}, { command: "DEL", runtime: { ...runtime, netns: "" }, pluginDirs: [] }),
    ).not.toHaveProperty("CNI_NETNS");
    expect(pluginEnv({}, { command: "VERSION", pluginDirs: ["/a"] })).toEqual({
      CNI_COMMAND: "VERSION",
      CNI_PATH: "/a",
    });
  });
});

describe("cniArgsOf", () => {
  it("keeps a caller's IgnoreUnknown", () => {
    expect(cniArgsOf({})).toBe("IgnoreUnknown=true");
    expect(cniArgsOf({ A: "1", IgnoreUnknown: "0" })).toBe("A=1;IgnoreUnknown=0");
  });
});

describe("requestProblem", () => {
  it("accepts a good request", () => {
    expect(requestProblem(list, runtime)).toBeNull();
  });

  it("says what is wrong before any plugin runs", () => {
    expect(requestProblem({ ...list, name: "my net" }, runtime)).toMatch(
      /^the network name "my net" is not valid/,
    );
    expect(requestProblem({ ...list, plugins: [] }, runtime)).toBe(
      "the configuration list has no plugins",
    );
    expect(requestProblem({ ...list, plugins: [{ type: "../../bin/sh" }] }, runtime)).toBe(
      'plugins[0].type "../../bin/sh" is not a plugin file name',
    );
    expect(requestProblem({ ...list, plugins: [{ ipam: {} }] }, runtime)).toBe(
      "plugins[0].type null is not a plugin file name",
    );
    expect(requestProblem({ ...list, plugins: [{ type: "x", capabilities: [] }] }, runtime)).toBe(
      "plugins[0].capabilities is not an object",
    );
    expect(requestProblem(list, { ...runtime, containerId: "" })).toMatch(
      /^the container ID "" is not valid/,
    );
    expect(requestProblem(list, { ...runtime, args: { "A;B": "1" } })).toMatch(/^CNI_ARGS pair/);
    expect(requestProblem(list, { ...runtime, args: { A: "1;B=2" } })).toMatch(/^CNI_ARGS pair/);
  });

  it("applies the spec's interface name rules", () => {
    for (const ok of ["net1", "eth0", "a".repeat(15), "vf.1-x_y"]) {
      expect(interfaceNameProblem(ok), ok).toBeNull();
    }
    for (const bad of ["", ".", "..", "a".repeat(16), "a/b", "a:b", "a b", "ä".repeat(8)]) {
      expect(interfaceNameProblem(bad), bad).not.toBeNull();
    }
  });
});

describe("cacheKeyOf", () => {
  it("is libcni's <network>-<containerId>-<ifName>", () => {
    expect(cacheKeyOf("dbnet", runtime)).toBe("dbnet-0b3e6a2c-pod-net1");
  });
});
