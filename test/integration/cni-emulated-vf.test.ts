import { execFileSync } from "node:child_process";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CniExecutor } from "../../lib/cni/executor.js";
import { podInterfaceOf } from "../../lib/cni/result.js";
import {
  Cleanups,
  PLUGIN_DIRS,
  configList,
  linkIn,
  podRuntime,
  staticIpam,
} from "../../lib/cni/testing/real-plugins.js";
import { failure } from "../../lib/cni/testing/cni-error.js";
import {
  buildEmulatedHost,
  destroyEmulatedHost,
  macAddress,
  parseProfile,
} from "../../pkg/emulator/index.js";
import type { JsonObject } from "../../lib/util/json.js";
import { cniTestBinDir } from "../support/cni.js";

// hack/cni/emulated-vf (built by hack/build-cni.sh) in front of Debian's reference plugins
// (containernetworking-plugins), moving an emulated host's veth "VF" into a pod's network
// namespace. Link and namespace names are unique to this file, as vitest runs files in parallel.
const NETNS = "cnievf-pod";
const NETNS_PATH = `/var/run/netns/${NETNS}`;
const PF_NETDEV = "cnievf1";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const runtime = podRuntime("cnievf-container", NETNS_PATH);

const list = (plugins: JsonObject[]) => configList("cnievf-net", plugins);

describe("hack/cni/emulated-vf", () => {
  const profile = parseProfile(
    `
pfs:
  - pciAddress: "0000:9e:00.0"
    netdev: ${PF_NETDEV}
    vendor: "8086"
    deviceID: "1572"
    vfDeviceID: "154c"
    driver: i40e
    vfDriver: iavf
    pcieRoot: pci0000:9d
    totalVfs: 4
    numVfs: 2
    vfOffset: 16
`,
    "cni-emulated-vf.test.ts",
  );
  const VF = "0000:9e:02.1";
  let binDir: string;

  beforeAll(() => {
    binDir = cniTestBinDir();
  });

  async function emulatedHost(): Promise<string> {
    const root = path.join(cleanups.tempDir("cni-emulated-"), "host");
    cleanups.push(() => destroyEmulatedHost(root));
    await buildEmulatedHost({ root, profile, netdevs: true });
    return root;
  }

  function executor(): CniExecutor {
    return new CniExecutor({
      pluginDirs: [binDir, ...PLUGIN_DIRS],
      cacheDir: cleanups.tempDir("cni-emulated-cache-"),
      timeoutMs: 30_000,
      logger: pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" }),
    });
  }

  it("is a static binary: it runs in the node plugin's distroless image", () => {
    const headers = execFileSync(
      "readelf",
      ["--program-headers", path.join(binDir, "emulated-vf")],
      {
        encoding: "utf8",
      },
    );
    expect(headers).not.toContain("program interpreter");
  });

  it("plugs the VF's netdev, found by deviceID under the emulated sysfs, into the pod", async () => {
    const root = await emulatedHost();
    cleanups.netns(NETNS);
    const cni = executor();
    const config = list([
      { type: "emulated-vf", hostRoot: root, deviceID: VF, ipam: staticIpam("10.98.0.7/24") },
    ]);

    const result = await cni.add(config, runtime);

    expect(linkIn(null, `${PF_NETDEV}v1`)).toBeUndefined();
    const inPod = linkIn(NETNS, "net1");
    expect(inPod?.address).toBe(macAddress(VF));
    expect(inPod?.addr_info).toEqual([expect.objectContaining({ local: "10.98.0.7" })]);
    expect(podInterfaceOf(result, "net1")).toEqual({
      interfaceName: "net1",
      ips: ["10.98.0.7/24"],
      hardwareAddress: macAddress(VF),
    });
    await cni.check(config, runtime);

    await cni.del(config, runtime);
    expect(linkIn(null, `${PF_NETDEV}v1`)?.address).toBe(macAddress(VF));
    expect(linkIn(NETNS, "net1")).toBeUndefined();
    // Idempotent, though the pod's namespace is still there and host-device 1.1.1 is not.
    await cni.del(config, runtime);
  });

  it("says which VF has no netdev", async () => {
    const root = await emulatedHost();
    cleanups.netns(NETNS);
    const cni = executor();
    const error = await failure(
      cni.add(list([{ type: "emulated-vf", hostRoot: root, deviceID: "0000:9e:02.3" }]), runtime),
    );
    expect(error).toMatchObject({ plugin: "emulated-vf", code: 7 });
    expect(error.msg).toBe(`VF 0000:9e:02.3 has no netdev under ${root}`);
  });

  it("takes only a PCI address as deviceID, never a path", async () => {
    const root = await emulatedHost();
    cleanups.netns(NETNS);
    const error = await failure(
      executor().add(list([{ type: "emulated-vf", hostRoot: root, deviceID: "../00.0" }]), runtime),
    );
    expect(error).toMatchObject({ plugin: "emulated-vf", code: 7 });
    expect(error.msg).toBe('deviceID "../00.0" is not a PCI address');
  });
});
