import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { KubeClient } from "./client.js";

const KUBECONFIG = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: { server: "https://dev.example:6443" }
- name: prod
  cluster: { server: "https://prod.example:6443" }
users:
- name: me
  user: { token: "t" }
contexts:
- name: dev
  context: { cluster: dev, user: me }
- name: prod
  context: { cluster: prod, user: me }
`;

const config = () => {
  const loaded = new KubeConfig();
  loaded.loadFromString(KUBECONFIG);
  return loaded;
};

describe("KubeClient.fromConfig", () => {
  it("uses the current context, or the one named like kubectl's --context", () => {
    expect(KubeClient.fromConfig(config()).server).toBe("https://dev.example:6443");
    expect(KubeClient.fromConfig(config(), "prod").server).toBe("https://prod.example:6443");
  });

  it("refuses a context the kubeconfig does not have, naming the ones it has", () => {
    expect(() => KubeClient.fromConfig(config(), "staging")).toThrow(
      'context "staging" is not in the kubeconfig (contexts: dev, prod)',
    );
  });
});
