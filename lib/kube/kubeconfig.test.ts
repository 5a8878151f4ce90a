import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  accessFromKubeconfig,
  inClusterAccess,
  kubeconfigDocOf,
  mergeKubeconfigs,
  type ReadFile,
} from "./kubeconfig.js";

const KUBECONFIG = `
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: { server: "https://dev.example:6443/", certificate-authority: ca.crt, tls-server-name: api.dev }
- name: prod
  cluster: { server: "https://prod.example:6443", certificate-authority-data: Y2EtcHJvZA==, insecure-skip-tls-verify: true }
users:
- name: me
  user: { token: "t", client-certificate: certs/me.crt, client-key-data: a2V5 }
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/get-token
      args: [--cluster, prod]
      env: [{ name: REGION, value: eu }]
- name: old
  user: { auth-provider: { name: oidc } }
contexts:
- name: dev
  context: { cluster: dev, user: me }
- name: prod
  context: { cluster: prod, user: plugin, namespace: team-a }
- name: legacy
  context: { cluster: prod, user: old }
`;

const files: Record<string, string> = {
  "/etc/kube/ca.crt": "ca-dev",
  "/etc/kube/certs/me.crt": "cert-me",
};
const readFile: ReadFile = (file) => {
  if (!(file in files)) throw new Error(`ENOENT ${file}`);
  return Buffer.from(files[file]!);
};
const doc = () => kubeconfigDocOf(KUBECONFIG, "/etc/kube", "test");

describe("accessFromKubeconfig", () => {
  it("resolves the current context: server, files relative to the kubeconfig, inline data, token", () => {
    const access = accessFromKubeconfig(doc(), readFile);
    expect(access).toEqual({
      server: "https://dev.example:6443",
      namespace: "default",
      tls: {
        ca: Buffer.from("ca-dev"),
        cert: Buffer.from("cert-me"),
        key: Buffer.from("key"),
        insecureSkipVerify: false,
        serverName: "api.dev",
      },
      auth: { kind: "token", token: "t" },
    });
  });

  it("uses the context named like kubectl's --context, with its namespace and exec plugin", () => {
    const access = accessFromKubeconfig(doc(), readFile, "prod");
    expect(access.server).toBe("https://prod.example:6443");
    expect(access.namespace).toBe("team-a");
    expect(access.tls).toEqual({ ca: Buffer.from("ca-prod"), insecureSkipVerify: true });
    expect(access.auth).toEqual({
      kind: "exec",
      exec: {
        apiVersion: "client.authentication.k8s.io/v1",
        command: path.resolve("/etc/kube", "bin/get-token"),
        args: ["--cluster", "prod"],
        env: { REGION: "eu" },
      },
    });
  });

  it("refuses a context the kubeconfig does not have, naming the ones it has", () => {
    expect(() => accessFromKubeconfig(doc(), readFile, "staging")).toThrow(
      'context "staging" is not in the kubeconfig (contexts: dev, prod, legacy)',
    );
  });

  it("refuses an auth-provider, pointing at exec plugins", () => {
    expect(() => accessFromKubeconfig(doc(), readFile, "legacy")).toThrow(/exec credential plugin/);
  });

  it("says what to do when nothing is configured", () => {
    expect(() => accessFromKubeconfig(kubeconfigDocOf("{}", "/", "empty"), readFile)).toThrow(
      /no Kubernetes cluster configured/,
    );
  });

  it("merges several files as kubectl: the first of each name and the first current context win", () => {
    const second = kubeconfigDocOf(
      `
current-context: other
clusters: [{ name: dev, cluster: { server: "https://shadowed:1" } }, { name: other, cluster: { server: "https://other:2" } }]
users: [{ name: u2, user: { tokenFile: token } }]
contexts: [{ name: other, context: { cluster: other, user: u2 } }]
`,
      "/home/x",
      "second",
    );
    const merged = mergeKubeconfigs([doc(), second]);
    expect(accessFromKubeconfig(merged, readFile).server).toBe("https://dev.example:6443");
    const other = accessFromKubeconfig(merged, readFile, "other");
    expect(other.server).toBe("https://other:2");
    expect(other.auth).toEqual({ kind: "tokenFile", file: "/home/x/token" });
  });
});

describe("inClusterAccess", () => {
  const sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  const podFiles: Record<string, string> = { [`${sa}/ca.crt`]: "ca", [`${sa}/namespace`]: "ns1\n" };
  const read: ReadFile = (file) => Buffer.from(podFiles[file] ?? "");
  const exists = (file: string) => file in podFiles || file === `${sa}/token`;

  it("reads the service account, bracketing an IPv6 service host", () => {
    expect(
      inClusterAccess(
        { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" },
        read,
        exists,
      ),
    ).toEqual({
      server: "https://[fd00::1]:443",
      namespace: "ns1",
      tls: { ca: Buffer.from("ca"), insecureSkipVerify: false },
      auth: { kind: "tokenFile", file: `${sa}/token` },
    });
  });

  it("is null outside a pod", () => {
    expect(inClusterAccess({}, read, exists)).toBeNull();
  });
});
