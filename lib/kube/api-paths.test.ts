import { describe, expect, it } from "vitest";
import {
  configMapsPath,
  networkAttachmentDefinitionsPath,
  nodesPath,
  resourceClaimsPath,
  resourceSlicesPath,
} from "./api-paths.js";

describe("API paths", () => {
  it("builds collection and object paths, cluster-wide and namespaced", () => {
    expect(nodesPath()).toBe("/api/v1/nodes");
    expect(resourceSlicesPath("node-a-0")).toBe("/apis/resource.k8s.io/v1/resourceslices/node-a-0");
    expect(resourceClaimsPath()).toBe("/apis/resource.k8s.io/v1/resourceclaims");
    expect(resourceClaimsPath("ns", "claim")).toBe(
      "/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims/claim",
    );
    expect(networkAttachmentDefinitionsPath("ns", "net")).toBe(
      "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/net",
    );
    expect(networkAttachmentDefinitionsPath()).toBe(
      "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions",
    );
    expect(configMapsPath("kube-system", "sriovdp-config")).toBe(
      "/api/v1/namespaces/kube-system/configmaps/sriovdp-config",
    );
  });

  it("never lets a name add a segment or a query", () => {
    expect(resourceClaimsPath("ns/../x", "a?b#c")).toBe(
      "/apis/resource.k8s.io/v1/namespaces/ns%2F..%2Fx/resourceclaims/a%3Fb%23c",
    );
  });
});
