import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_NETWORKS,
  NetworksAnnotationError,
  parseNetworksAnnotation,
} from "../../pkg/multus/networks-annotation.js";
import { fuzzRuns } from "./runs.js";

/** Near-valid entries of the JSON form, with any JSON under the keys the parser reads. */
const json = fc.jsonValue({ maxDepth: 4 });
const entry = fc.record(
  {
    name: fc.oneof(fc.stringMatching(/^[a-z0-9-]{0,12}$/), json),
    namespace: fc.oneof(fc.stringMatching(/^[a-z0-9./-]{0,12}$/), json),
    interface: fc.oneof(fc.string({ maxLength: 20 }), json),
    ips: fc.oneof(fc.array(fc.string({ maxLength: 20 }), { maxLength: 20 }), json),
    mac: fc.oneof(fc.string({ maxLength: 20 }), json),
    "default-route": json,
  },
  { requiredKeys: [] },
);
const commaForm = fc
  .array(fc.stringMatching(/^[a-zA-Z0-9 /@._-]{0,16}$/), { maxLength: 40 })
  .map((items) => items.join(","));
const annotation = fc.oneof(
  commaForm,
  fc.array(fc.oneof(entry, json), { maxLength: 40 }).map((list) => JSON.stringify(list)),
  fc.string({ maxLength: 200 }),
  json.map((value) => JSON.stringify(value)),
);

describe("fuzz: the k8s.v1.cni.cncf.io/networks annotation (a tenant writes it)", () => {
  it("parses into bounded, checked networks or refuses with a NetworksAnnotationError", () => {
    fc.assert(
      fc.property(annotation, (text) => {
        let networks;
        try {
          networks = parseNetworksAnnotation(text, "pod-ns");
        } catch (error) {
          if (!(error instanceof NetworksAnnotationError)) throw error;
          expect(error.message.length).toBeLessThan(4096);
          return;
        }
        expect(networks.length).toBeLessThanOrEqual(MAX_NETWORKS);
        for (const network of networks) {
          expect(network.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
          expect(network.namespace).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
          expect(network.interface ?? "ok").not.toMatch(/[/:%\s]/);
        }
      }),
      { numRuns: fuzzRuns(3000) },
    );
  });
});
