import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SchemaError } from "../../api/schema/decode.js";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { decodeSriovResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import { decodeVfConfig } from "../../api/v1alpha1/vf-config.js";
import { applyResourceFilters } from "../../pkg/filters/apply.js";
import { filterObjectOf } from "../../pkg/filters/decode.js";
import {
  decodeDeviceAttributes,
  decodeSriovResourcePolicy,
} from "../../api/v1alpha1/sriov-resource-policy.js";
import { x710Vf } from "../../pkg/devices/testing/fixtures.js";
import { translatePolicies } from "../../pkg/policies/translate.js";
import { ClaimError } from "../../pkg/prepare/claim-error.js";
import { cniConfigListOf } from "../../pkg/prepare/network-config.js";
import { fuzzRuns } from "./runs.js";

/** Anything JSON can carry, nested objects under the keys a decoder looks for included. */
const json = fc.jsonValue({ maxDepth: 6 });
const nearVfConfig = fc.record(
  {
    apiVersion: fc.oneof(fc.constant(API_VERSION), fc.string()),
    kind: fc.oneof(fc.constant("VfConfig"), fc.string()),
    driver: fc.oneof(fc.constantFrom("", "default", "vfio-pci"), json),
    ifName: fc.oneof(fc.string({ maxLength: 20 }), json),
    netAttachDefName: fc.oneof(fc.domain(), json),
    ips: fc.oneof(fc.array(fc.string(), { maxLength: 20 }), json),
    mac: fc.oneof(fc.string(), json),
  },
  { requiredKeys: [] },
);

/** Only our own error types, naming what is wrong: never a TypeError or a stack overflow. */
function refusesCleanly(decode: () => unknown, ...allowed: (new (...args: never[]) => Error)[]) {
  try {
    decode();
  } catch (error) {
    if (!allowed.some((type) => error instanceof type)) throw error;
    expect((error as Error).message.length).toBeLessThan(64 * 1024);
  }
}

describe("fuzz: decoders of what tenants and the API server send", () => {
  it("VfConfig: decodes or refuses with a SchemaError", () => {
    fc.assert(
      fc.property(fc.oneof(json, nearVfConfig), (value) => {
        refusesCleanly(() => decodeVfConfig(value, "fuzz"), SchemaError);
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });

  it("SriovResourceFilter: decodes or refuses; a node applies whatever arrives, failing closed", () => {
    fc.assert(
      fc.property(json, (value) => {
        refusesCleanly(() => decodeSriovResourceFilter(value), SchemaError);
        const filter = filterObjectOf(value, "ns");
        const result = applyResourceFilters({ nodeLabels: {}, devices: [], filters: [filter] });
        if (filter.undecodable)
          expect(result.rejected.length + result.selectedBy.length).toBeGreaterThan(0);
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });

  it("SriovResourcePolicy, DeviceAttributes: decode or refuse; a node applies whatever arrives, failing closed", () => {
    const upstream = "sriovnetwork.k8snetworkplumbingwg.io/v1alpha1";
    const near = (kind: string) =>
      fc.record({
        apiVersion: fc.constant(upstream),
        kind: fc.constant(kind),
        metadata: fc.record(
          { name: fc.constantFrom("a", "b"), labels: json },
          { requiredKeys: [] },
        ),
        spec: json,
      });
    const devices = [x710Vf(0, 0), x710Vf(1, 0)];
    fc.assert(
      fc.property(
        fc.array(fc.oneof(json, near("SriovResourcePolicy")), { maxLength: 3 }),
        fc.array(fc.oneof(json, near("DeviceAttributes")), { maxLength: 3 }),
        (policies, attributes) => {
          for (const value of policies)
            refusesCleanly(() => decodeSriovResourcePolicy(value), SchemaError);
          for (const value of attributes)
            refusesCleanly(() => decodeDeviceAttributes(value), SchemaError);
          const translated = translatePolicies(policies, attributes, {
            namespace: "ns",
            driverName: "sriovnetwork.k8snetworkplumbingwg.io",
          });
          const result = applyResourceFilters({
            nodeLabels: {},
            devices,
            filters: [],
            policies: translated.policies,
          });
          // Opt-in, failing closed: policies that cannot be read hide every VF.
          if (policies.length > 0 && translated.policies.every((p) => p.undecodable)) {
            expect(result.devices).toEqual([]);
          }
          for (const policy of translated.policies) {
            if (policy.undecodable) expect(policy.configs).toEqual([]);
          }
        },
      ),
      { numRuns: fuzzRuns(1000) },
    );
  });

  it("NetworkAttachmentDefinition config: a CNI list or a ClaimError, whatever the text", () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      json.map((value) => JSON.stringify(value)),
      fc
        .integer({ min: 1, max: 20_000 })
        .map(
          (depth) =>
            `{"cniVersion":"1.0.0","type":"x","a":${"[".repeat(depth)}${"]".repeat(depth)}}`,
        ),
    );
    fc.assert(
      fc.property(text, (config) => {
        refusesCleanly(
          () => cniConfigListOf({ metadata: { namespace: "ns", name: "net" }, spec: { config } }),
          ClaimError,
        );
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});
