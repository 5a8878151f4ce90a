import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch } from "undici";

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

const HTTP_METHODS: Record<KubeRequest["method"], HttpMethod> = {
  GET: HttpMethod.GET,
  POST: HttpMethod.POST,
  PUT: HttpMethod.PUT,
  PATCH: HttpMethod.PATCH,
  DELETE: HttpMethod.DELETE,
};

/**
 * The one way this driver talks to the API server: plain REST over the kubeconfig's
 * transport (TLS, tokens, exec plugins come from client-node), with watches read as
 * JSON lines so the list-watch loop above it controls every timeout and retry.
 */
export class KubeClient {
  /**
   * One connection pool for the client's life: a dispatcher per request (what client-node
   * hands out) would mean a TLS handshake per request. Headers (tokens, which rotate) are
   * still applied per request; TLS material (CA, client certificate) is read once.
   */
  private dispatcher: ReturnType<RequestContext["getDispatcher"]>;

  constructor(private readonly config: KubeConfig) {}

  /**
   * Kubeconfig file if given, else $KUBECONFIG, ~/.kube/config or the in-cluster service
   * account; `context` (kubectl's `--context`) instead of the file's current context.
   */
  static load(kubeconfig?: string, context?: string): KubeClient {
    const config = new KubeConfig();
    if (kubeconfig) config.loadFromFile(kubeconfig);
    else config.loadFromDefault();
    return KubeClient.fromConfig(config, context);
  }

  /** A loaded kubeconfig, switched to `context` when given (which must exist). */
  static fromConfig(config: KubeConfig, context?: string): KubeClient {
    if (context !== undefined && context !== "") {
      if (config.getContextObject(context) === null) {
        const known = config.getContexts().map((c) => c.name);
        throw new Error(
          `context "${context}" is not in the kubeconfig (contexts: ${known.join(", ") || "none"})`,
        );
      }
      config.setCurrentContext(context);
    }
    if (!config.getCurrentCluster()) {
      throw new Error(
        "no Kubernetes cluster configured: pass --kubeconfig or run in a pod with a service account",
      );
    }
    return new KubeClient(config);
  }

  /** The current context's namespace, `default` when it names none (as kubectl). */
  get namespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace || "default";
  }

  get server(): string {
    return this.config.getCurrentCluster()!.server;
  }

  async request<T>(request: KubeRequest): Promise<T> {
    const response = await this.send(request);
    const text = await response.text();
    if (!response.ok) throw toApiError(response.status, text, request);
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
    if (!response.ok)
      throw toApiError(response.status, await response.text(), { method: "GET", path });
    if (!response.body) return;
    const lines = createInterface({ input: Readable.fromWeb(response.body), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() !== "") yield JSON.parse(line) as WatchEvent<T>;
      }
    } finally {
      lines.close();
    }
  }

  private async send(request: KubeRequest) {
    const url = new URL(this.server + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const context = new RequestContext(url.toString(), HTTP_METHODS[request.method]);
    await this.config.applySecurityAuthentication(context);
    const headers = context.getHeaders() as Record<string, string>;
    headers["accept"] = "application/json";
    if (request.body !== undefined)
      headers["content-type"] = request.contentType ?? "application/json";
    return fetch(url, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      dispatcher: (this.dispatcher ??= context.getDispatcher()),
      signal: request.signal,
    });
  }
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
