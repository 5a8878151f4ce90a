import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PROTO_FILES } from "../../api/proto/index.js";
import { loadKubeletProtos } from "./protos.js";

const repoProtoDir = path.resolve(import.meta.dirname, "../../api/proto");

describe("loadKubeletProtos", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "protos-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names a missing file in a given directory", () => {
    fs.cpSync(repoProtoDir, dir, { recursive: true });
    fs.rmSync(path.join(dir, PROTO_FILES.health));
    expect(() => loadKubeletProtos(dir)).toThrow(/health\.proto is missing/);
  });
});

describe("the kubelet's wire format", () => {
  const protos = loadKubeletProtos();

  it("uses the kubelet's method paths", () => {
    expect(protos.registration.GetInfo.path).toBe("/pluginregistration.Registration/GetInfo");
    expect(protos.registration.NotifyRegistrationStatus.path).toBe(
      "/pluginregistration.Registration/NotifyRegistrationStatus",
    );
    expect(protos.draV1.NodePrepareResources.path).toBe(
      "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources",
    );
    expect(protos.draV1beta1.NodeUnprepareResources.path).toBe(
      "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources",
    );
    expect(protos.health.Check.path).toBe("/grpc.health.v1.Health/Check");
    expect(protos.draHealthV1.NodeWatchResources.path).toBe(
      "/v1.DRAResourceHealth/NodeWatchResources",
    );
    expect(protos.draHealthV1alpha1.NodeWatchResources.path).toBe(
      "/v1alpha1.DRAResourceHealth/NodeWatchResources",
    );
    expect(protos.draHealthV1.NodeWatchResources.responseStream).toBe(true);
  });

  it.each(["draHealthV1", "draHealthV1alpha1"] as const)(
    "numbers %s DeviceHealth fields 1-5 and its device's pool 1, name 2",
    (version) => {
      const bytes = protos[version].NodeWatchResources.responseSerialize({
        devices: [
          {
            device: { pool_name: "n", device_name: "d" },
            health: "UNHEALTHY",
            last_updated_time: "1700000000",
            health_check_timeout_seconds: "30",
            message: "m",
          },
        ],
      });
      const device = "0a06" + "0a016e" + "120164";
      // health UNHEALTHY = 2, time as a varint, timeout 30, message "m"
      const health = device + "1002" + "1880e2cfaa06" + "201e" + "2a016d";
      expect(bytes.toString("hex")).toBe("0a15" + health);
    },
  );

  it("numbers Claim fields namespace=1, uid=2, name=3", () => {
    const bytes = protos.draV1.NodePrepareResources.requestSerialize({
      claims: [{ namespace: "a", uid: "b", name: "c" }],
    });
    // claims (field 1, length 9) { namespace "a", uid "b", name "c" }
    expect(bytes.toString("hex")).toBe("0a09" + "0a0161" + "120162" + "1a0163");
  });

  it("numbers Device fields 1-4 and the claim error 2, keyed by claim UID", () => {
    const bytes = protos.draV1beta1.NodePrepareResources.responseSerialize({
      claims: {
        u: {
          devices: [
            { request_names: ["r"], pool_name: "p", device_name: "d", cdi_device_ids: ["c"] },
          ],
          error: "",
        },
      },
    });
    const device = "0a0172" + "120170" + "1a0164" + "220163";
    // protobufjs writes the empty error (field 2) too; proto3 readers take it as unset.
    const claimResponse = "0a0c" + device + "1200";
    const entry = "0a0175" + "1210" + claimResponse;
    expect(bytes.toString("hex")).toBe("0a15" + entry);
  });

  it("numbers PluginInfo and RegistrationStatus fields like the kubelet", () => {
    const info = protos.registration.GetInfo.responseSerialize({
      type: "t",
      name: "n",
      endpoint: "e",
      supported_versions: ["v"],
    });
    expect(info.toString("hex")).toBe("0a0174" + "12016e" + "1a0165" + "220176");
    const status = protos.registration.NotifyRegistrationStatus.requestSerialize({
      plugin_registered: true,
      error: "x",
    });
    expect(status.toString("hex")).toBe("0801" + "120178");
  });

  it("reads every field of a kubelet request, defaults included", () => {
    const bytes = Buffer.from("0a09" + "0a0161" + "120162" + "1a0163", "hex");
    expect(protos.draV1.NodeUnprepareResources.requestDeserialize(bytes)).toEqual({
      claims: [{ namespace: "a", uid: "b", name: "c" }],
    });
    expect(protos.draV1.NodePrepareResources.requestDeserialize(Buffer.alloc(0))).toEqual({
      claims: [],
    });
  });
});
