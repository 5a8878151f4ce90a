import { describe, expect, it } from "vitest";
import { eventMask, NriEvent, podEventOf, SUBSCRIBED_EVENT_MASK } from "./events.js";
import { toPodSandbox } from "./pod.js";
import { DEFAULT_NRI_SOCKET_PATH, loadNriProtos } from "./protos.js";
import { wirePod } from "./testing/fake-runtime.js";

describe("NRI's wire format", () => {
  const protos = loadNriProtos();

  it("uses NRI's service and method names", () => {
    expect(protos.runtime.RegisterPlugin.path).toBe("/nri.pkg.api.v1alpha1.Runtime/RegisterPlugin");
    expect(Object.values(protos.plugin).map((method: { path: string }) => method.path)).toEqual(
      [
        "Configure",
        "Synchronize",
        "Shutdown",
        "RunPodSandbox",
        "StopPodSandbox",
        "RemovePodSandbox",
        "StateChange",
      ].map((method) => `/nri.pkg.api.v1alpha1.Plugin/${method}`),
    );
    expect(DEFAULT_NRI_SOCKET_PATH).toBe("/var/run/nri/nri.sock");
  });

  it("numbers RegisterPluginRequest fields plugin_name=1 plugin_idx=2 NRI_version=3", () => {
    const bytes = protos.runtime.RegisterPlugin.requestSerialize({
      plugin_name: "n",
      plugin_idx: "10",
      NRI_version: "v",
    });
    expect(bytes.toString("hex")).toBe("0a016e" + "12023130" + "1a0176");
  });

  it("reads ConfigureRequest fields 1-6 and writes ConfigureResponse.events as field 2", () => {
    const request = Buffer.from(
      "0a0163" + "120172" + "1a0176" + "208827" + "28d00f" + "32026e76",
      "hex",
    );
    expect(protos.plugin.Configure.requestDeserialize(request)).toEqual({
      config: "c",
      runtime_name: "r",
      runtime_version: "v",
      registration_timeout: "5000",
      request_timeout: "2000",
      NRI_version: "nv",
    });
    expect(protos.plugin.Configure.responseSerialize({ events: 7 }).toString("hex")).toBe("1007");
  });

  it("numbers Synchronize pods=1 more=3 and echoes more as field 2", () => {
    const request = Buffer.from("0a03" + "0a0178" + "1801", "hex");
    expect(protos.plugin.Synchronize.requestDeserialize(request)).toMatchObject({
      pods: [{ id: "x" }],
      more: true,
    });
    expect(protos.plugin.Synchronize.responseSerialize({ more: true }).toString("hex")).toBe(
      "1001",
    );
  });

  it("reads a PodSandbox with its namespaces (linux=8, namespaces=5) and skips unknown fields", () => {
    const namespace = "0a076e6574776f726b" + "120170"; // type "network", path "p"
    const linux = "1a0163" + "2a0c" + namespace; // cgroup_parent "c", namespaces [...]
    const pod =
      "0a0169" +
      "12016e" +
      "1a0175" +
      "22026e73" + // id, name, uid, namespace
      "2a060a016b120176" + // labels {k: v}
      "4211" +
      linux + // linux
      "482a" + // pid 42
      "5208" +
      "31302e302e302e35" + // ips ["10.0.0.5"]
      "5a00"; // field 11, not in our subset
    const decoded = protos.plugin.RunPodSandbox.requestDeserialize(
      Buffer.from("0a" + (pod.length / 2).toString(16) + pod, "hex"),
    );
    expect(toPodSandbox(decoded.pod)).toEqual({
      id: "i",
      name: "n",
      uid: "u",
      namespace: "ns",
      labels: { k: "v" },
      annotations: {},
      runtimeHandler: "",
      pid: 42,
      ips: ["10.0.0.5"],
      namespaces: [{ type: "network", path: "p" }],
    });
  });

  it("reads StateChangeEvent.event by name, and unknown events by number", () => {
    const known = protos.plugin.StateChange.requestDeserialize(Buffer.from("0802", "hex"));
    expect(known).toEqual({ event: "STOP_POD_SANDBOX", pod: null });
    const future = protos.plugin.StateChange.requestDeserialize(Buffer.from("0863", "hex"));
    expect(future.event).toBe(99);
    expect(podEventOf(known.event)).toBe("STOP_POD_SANDBOX");
    expect(podEventOf(future.event)).toBeUndefined();
    expect(podEventOf(3)).toBe("REMOVE_POD_SANDBOX");
  });
});

describe("event masks", () => {
  it("match the event numbers in the .proto file", () => {
    const { events } = loadNriProtos();
    for (const [name, number] of Object.entries(NriEvent)) expect(events.get(number)).toBe(name);
  });

  it("set bit 1 << (event - 1) per event, never 0 for the subscription", () => {
    expect(eventMask([1])).toBe(1);
    expect(eventMask([3])).toBe(4);
    expect(eventMask([11, 1])).toBe(0x401);
    expect(SUBSCRIBED_EVENT_MASK).toBe(0b111);
    expect(() => eventMask([0])).toThrow(RangeError);
  });
});

describe("toPodSandbox", () => {
  it("copies NRI's pod into plain data", () => {
    const wire = wirePod({ name: "a", labels: { x: "y" } });
    const pod = toPodSandbox(wire);
    wire.labels["x"] = "changed";
    expect(pod.labels).toEqual({ x: "y" });
    expect(pod.namespaces).toEqual([{ type: "network", path: "/var/run/netns/cni-a" }]);
  });

  it("makes an empty pod of a missing one and of one without Linux data", () => {
    expect(toPodSandbox(null)).toMatchObject({ id: "", uid: "", namespaces: [], ips: [] });
    expect(toPodSandbox(wirePod({ linux: null })).namespaces).toEqual([]);
  });
});
