import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";

/** How a request authenticates; tokens from a file and exec plugins are read when used. */
export type KubeAuth =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | { kind: "tokenFile"; file: string }
  | { kind: "basic"; username: string; password: string }
  | { kind: "exec"; exec: ExecConfig };

/** A kubeconfig user's `exec` credential plugin (client.authentication.k8s.io). */
export interface ExecConfig {
  apiVersion: string;
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipVerify: boolean;
  serverName?: string;
}

/** Everything needed to reach one API server as one user: a kubeconfig context, resolved. */
export interface ClusterAccess {
  /** `https://host:port` (or http), no trailing slash. */
  server: string;
  /** The context's namespace, `default` when it names none (as kubectl). */
  namespace: string;
  tls: TlsMaterial;
  auth: KubeAuth;
}

/** Reads a file a kubeconfig names; injected so resolving stays pure in tests. */
export type ReadFile = (file: string) => Buffer;

interface Named<T> {
  name: string;
  value: T;
}

/** The kubeconfig fields this client reads; anything else is ignored, as kubectl does. */
export interface KubeconfigDoc {
  currentContext?: string;
  clusters: Named<Record<string, unknown>>[];
  users: Named<Record<string, unknown>>[];
  contexts: Named<Record<string, unknown>>[];
  /** Directory relative file paths of this document are resolved against. */
  dirs: Map<unknown, string>;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** One kubeconfig file's YAML as named lists; `dir` is where its relative paths start. */
export function kubeconfigDocOf(text: string, dir: string, source: string): KubeconfigDoc {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new Error(`kubeconfig ${source} is not YAML: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const root = isRecord(raw) ? raw : {};
  const doc: KubeconfigDoc = {
    clusters: namedList(root["clusters"], "cluster", source),
    users: namedList(root["users"], "user", source),
    contexts: namedList(root["contexts"], "context", source),
    dirs: new Map(),
  };
  const current = root["current-context"];
  if (typeof current === "string" && current !== "") doc.currentContext = current;
  for (const entry of [...doc.clusters, ...doc.users, ...doc.contexts]) doc.dirs.set(entry, dir);
  return doc;
}

/** Several kubeconfigs as kubectl merges $KUBECONFIG: the first of each name and the first current context win. */
export function mergeKubeconfigs(docs: readonly KubeconfigDoc[]): KubeconfigDoc {
  const merged: KubeconfigDoc = { clusters: [], users: [], contexts: [], dirs: new Map() };
  for (const doc of docs) {
    merged.currentContext ??= doc.currentContext;
    for (const key of ["clusters", "users", "contexts"] as const) {
      for (const entry of doc[key]) {
        if (merged[key].some((known) => known.name === entry.name)) continue;
        merged[key].push(entry);
        merged.dirs.set(entry, doc.dirs.get(entry)!);
      }
    }
  }
  return merged;
}

/** The names of the contexts a kubeconfig has. */
export function contextNames(doc: KubeconfigDoc): string[] {
  return doc.contexts.map((context) => context.name);
}

/**
 * The cluster and user of `context` (else the current context), with every file it names
 * read through `readFile`. Errors name the kubeconfig field to fix.
 */
export function accessFromKubeconfig(
  doc: KubeconfigDoc,
  readFile: ReadFile,
  context?: string,
): ClusterAccess {
  const contextName = context !== undefined && context !== "" ? context : doc.currentContext;
  if (contextName === undefined) {
    throw new Error(
      "no Kubernetes cluster configured: the kubeconfig has no current-context (pass --context), or pass --kubeconfig, or run in a pod with a service account",
    );
  }
  const chosen = doc.contexts.find((entry) => entry.name === contextName);
  if (chosen === undefined) {
    throw new Error(
      `context "${contextName}" is not in the kubeconfig (contexts: ${contextNames(doc).join(", ") || "none"})`,
    );
  }
  const clusterName = chosen.value["cluster"];
  const cluster = doc.clusters.find((entry) => entry.name === clusterName);
  if (cluster === undefined) {
    throw new Error(
      `context "${contextName}" names cluster "${String(clusterName)}", which the kubeconfig lacks`,
    );
  }
  const server = stringField(cluster.value, "server", `cluster "${cluster.name}"`);
  if (!/^https?:\/\/[^/]/.test(server)) {
    throw new Error(
      `cluster "${cluster.name}" has server "${server}": an http(s):// URL is needed`,
    );
  }
  if (cluster.value["proxy-url"] !== undefined) {
    throw new Error(`cluster "${cluster.name}" sets proxy-url, which this client does not support`);
  }
  const userName = chosen.value["user"];
  const user = doc.users.find((entry) => entry.name === userName)?.value ?? {};
  const clusterDir = doc.dirs.get(cluster) ?? ".";
  const userEntry = doc.users.find((entry) => entry.name === userName);
  const userDir = (userEntry && doc.dirs.get(userEntry)) ?? ".";
  const namespace = chosen.value["namespace"];
  const serverName = cluster.value["tls-server-name"];
  return {
    server: server.replace(/\/+$/, ""),
    namespace: typeof namespace === "string" && namespace !== "" ? namespace : "default",
    tls: {
      ca: material(cluster.value, "certificate-authority", clusterDir, readFile),
      cert: material(user, "client-certificate", userDir, readFile),
      key: material(user, "client-key", userDir, readFile),
      insecureSkipVerify: cluster.value["insecure-skip-tls-verify"] === true,
      ...(typeof serverName === "string" && serverName !== "" ? { serverName } : {}),
    },
    auth: authOf(user, `user "${String(userName)}"`, userDir),
  };
}

/** The pod's service account (client-go's in-cluster config), or null outside a pod. */
export function inClusterAccess(
  env: NodeJS.ProcessEnv,
  readFile: ReadFile,
  exists: (file: string) => boolean,
): ClusterAccess | null {
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"];
  const tokenFile = path.join(SERVICE_ACCOUNT, "token");
  if (!host || !port || !exists(tokenFile)) return null;
  const namespaceFile = path.join(SERVICE_ACCOUNT, "namespace");
  const namespace = exists(namespaceFile) ? readFile(namespaceFile).toString("utf8").trim() : "";
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    namespace: namespace || "default",
    tls: { ca: readFile(path.join(SERVICE_ACCOUNT, "ca.crt")), insecureSkipVerify: false },
    auth: { kind: "tokenFile", file: tokenFile },
  };
}

/**
 * Where this process reaches the API server: the kubeconfig file if given, else $KUBECONFIG
 * (merged as kubectl does), ~/.kube/config, or the in-cluster service account; `context`
 * (kubectl's `--context`) instead of the current one.
 */
export function loadClusterAccess(kubeconfig?: string, context?: string): ClusterAccess {
  const readFile: ReadFile = (file) => fs.readFileSync(file);
  const docOf = (file: string) =>
    kubeconfigDocOf(fs.readFileSync(file, "utf8"), path.dirname(path.resolve(file)), file);
  if (kubeconfig) return accessFromKubeconfig(docOf(kubeconfig), readFile, context);
  const fromEnv = (process.env["KUBECONFIG"] ?? "").split(path.delimiter).filter(Boolean);
  if (fromEnv.length > 0) {
    const docs = fromEnv.filter((file) => fs.existsSync(file)).map(docOf);
    return accessFromKubeconfig(mergeKubeconfigs(docs), readFile, context);
  }
  const home = path.join(os.homedir(), ".kube", "config");
  if (fs.existsSync(home)) return accessFromKubeconfig(docOf(home), readFile, context);
  const inCluster = inClusterAccess(process.env, readFile, fs.existsSync);
  if (inCluster === null) {
    throw new Error(
      "no Kubernetes cluster configured: pass --kubeconfig or run in a pod with a service account",
    );
  }
  return inCluster;
}

function authOf(user: Record<string, unknown>, where: string, dir: string): KubeAuth {
  if (user["auth-provider"] !== undefined) {
    throw new Error(
      `${where} uses an auth-provider, which this client does not support: use an exec credential plugin (client.authentication.k8s.io) instead, as kubectl recommends`,
    );
  }
  const exec = user["exec"];
  if (isRecord(exec)) return { kind: "exec", exec: execConfigOf(exec, where, dir) };
  const token = user["token"];
  if (typeof token === "string" && token !== "") return { kind: "token", token };
  const tokenFile = user["tokenFile"];
  if (typeof tokenFile === "string" && tokenFile !== "")
    return { kind: "tokenFile", file: path.resolve(dir, tokenFile) };
  const username = user["username"];
  const password = user["password"];
  if (typeof username === "string" && typeof password === "string")
    return { kind: "basic", username, password };
  return { kind: "none" };
}

function execConfigOf(exec: Record<string, unknown>, where: string, dir: string): ExecConfig {
  const command = stringField(exec, "command", `${where} exec`);
  const args = exec["args"] ?? [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) {
    throw new Error(`${where} exec.args must be a list of strings`);
  }
  const env: Record<string, string> = {};
  for (const entry of Array.isArray(exec["env"]) ? exec["env"] : []) {
    if (isRecord(entry) && typeof entry["name"] === "string" && typeof entry["value"] === "string")
      env[entry["name"]] = entry["value"];
  }
  return {
    apiVersion:
      typeof exec["apiVersion"] === "string"
        ? exec["apiVersion"]
        : "client.authentication.k8s.io/v1",
    // A relative command with a slash is relative to the kubeconfig (as client-go does).
    command:
      command.includes("/") && !path.isAbsolute(command) ? path.resolve(dir, command) : command,
    args: args as string[],
    env,
  };
}

/** `<field>-data` (base64) or the file `<field>` names, relative to the kubeconfig. */
function material(
  entry: Record<string, unknown>,
  field: string,
  dir: string,
  readFile: ReadFile,
): Buffer | undefined {
  const data = entry[`${field}-data`];
  if (typeof data === "string" && data !== "") return Buffer.from(data, "base64");
  const file = entry[field];
  if (typeof file === "string" && file !== "") return readFile(path.resolve(dir, file));
  return undefined;
}

function namedList(list: unknown, key: string, source: string): Named<Record<string, unknown>>[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error(`kubeconfig ${source}: ${key}s must be a list`);
  return list.flatMap((item) => {
    if (!isRecord(item) || typeof item["name"] !== "string") return [];
    const value = item[key];
    return [{ name: item["name"], value: isRecord(value) ? value : {} }];
  });
}

function stringField(entry: Record<string, unknown>, field: string, where: string): string {
  const value = entry[field];
  if (typeof value !== "string" || value === "") throw new Error(`${where} has no ${field}`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
