import type { Agent, IncomingMessage } from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import { Credentials, type Credential } from "./credentials.js";
import { loadClusterAccess, type ClusterAccess } from "./kubeconfig.js";

// Not `import ... from "node:http"`: an ES module import of node:http reads all its exports,
// and its lazy WebSocket ones load Node's bundled undici (~8 MB more RSS in every process).
const http = process.getBuiltinModule("node:http");

/** The API server refused a request; `status` and `reason` follow metav1.Status. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}

export function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface KubeRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  /** Defaults to JSON; patches name their flavour (merge, apply). */
  contentType?: string;
  signal?: AbortSignal;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface KubeList<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/**
 * The one way this driver talks to the API server: plain REST over node:https with the
 * kubeconfig's TLS material and credentials (tokens, token files, exec plugins; see
 * kubeconfig.ts), with watches read as JSON lines so the list-watch loop above it controls
 * every timeout and retry.
 */
export class KubeClient {
  /**
   * One keep-alive connection pool for the client's life (a TLS handshake per request
   * otherwise); rebuilt only when an exec plugin hands out a new client certificate.
   */
  private agent: { agent: Agent; cert: Buffer | undefined } | undefined;
  private readonly credentials: Credentials;

  constructor(
    readonly access: ClusterAccess,
    credentials?: Credentials,
  ) {
    this.credentials = credentials ?? new Credentials(access.auth);
  }

  /**
   * Kubeconfig file if given, else $KUBECONFIG, ~/.kube/config or the in-cluster service
   * account; `context` (kubectl's `--context`) instead of the file's current context.
   */
  static load(kubeconfig?: string, context?: string): KubeClient {
    return new KubeClient(loadClusterAccess(kubeconfig, context));
  }

  /** The current context's namespace, `default` when it names none (as kubectl). */
  get namespace(): string {
    return this.access.namespace;
  }

  get server(): string {
    return this.access.server;
  }

  async request<T>(request: KubeRequest): Promise<T> {
    const response = await this.send(request);
    const text = await bodyText(response);
    if (!ok(response)) throw toApiError(response.statusCode ?? 0, text, request);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Streams watch events until the server ends the watch or `signal` aborts it. */
  async *watch<T>(path: string, query: Query, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const response = await this.send({
      method: "GET",
      path,
      query: { ...query, watch: true },
      signal,
    });
    if (!ok(response))
      throw toApiError(response.statusCode ?? 0, await bodyText(response), { method: "GET", path });
    const lines = createInterface({ input: response, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() !== "") yield JSON.parse(line) as WatchEvent<T>;
      }
    } finally {
      lines.close();
      response.destroy();
    }
  }

  private async send(request: KubeRequest): Promise<IncomingMessage> {
    const url = new URL(this.server + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const credential = await this.credentials.current();
    const headers: Record<string, string> = { accept: "application/json" };
    if (credential.authorization !== undefined) headers["authorization"] = credential.authorization;
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    if (body !== undefined) {
      headers["content-type"] = request.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    const transport = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const outgoing = transport.request(url, {
        method: request.method,
        headers,
        agent: this.agentFor(credential, url.protocol === "https:"),
        ...(request.signal ? { signal: request.signal } : {}),
      });
      outgoing.once("response", resolve);
      outgoing.once("error", (error) =>
        reject(new Error(`${request.method} ${this.server}${request.path}: ${error.message}`)),
      );
      outgoing.end(body);
    });
  }

  private agentFor(credential: Credential, secure: boolean): Agent {
    const cert = credential.cert ?? this.access.tls.cert;
    if (this.agent !== undefined && this.agent.cert === cert) return this.agent.agent;
    this.agent?.agent.destroy();
    const { tls } = this.access;
    const agent = secure
      ? new https.Agent({
          keepAlive: true,
          ca: tls.ca,
          cert,
          key: credential.key ?? tls.key,
          rejectUnauthorized: !tls.insecureSkipVerify,
          ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
        })
      : new http.Agent({ keepAlive: true });
    this.agent = { agent, cert };
    return agent;
  }
}

function ok(response: IncomingMessage): boolean {
  const status = response.statusCode ?? 0;
  return status >= 200 && status < 300;
}

async function bodyText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function toApiError(
  status: number,
  body: string,
  request: Pick<KubeRequest, "method" | "path">,
): KubeApiError {
  let reason = "Unknown";
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason ?? reason;
    message = parsed.message ?? message;
  } catch {
    // not a metav1.Status: keep the raw text
  }
  return new KubeApiError(
    status,
    reason,
    `${request.method} ${request.path}: ${status} ${reason}: ${message}`,
  );
}
