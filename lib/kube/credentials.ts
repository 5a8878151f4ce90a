import { execFile } from "node:child_process";
import fs from "node:fs";
import type { ExecConfig, KubeAuth } from "./kubeconfig.js";

/** What one request presents: an Authorization header and/or a client certificate. */
export interface Credential {
  authorization?: string;
  cert?: Buffer;
  key?: Buffer;
}

/** Runs an exec credential plugin and returns its stdout. */
export type ExecRunner = (exec: ExecConfig) => Promise<string>;

/** Token files are re-read this often: projected service-account tokens rotate. */
const TOKEN_FILE_TTL_MS = 60_000;
const EXEC_OUTPUT_LIMIT = 1 << 20;

/**
 * The credential of a kubeconfig user, kept current: a token file is re-read each minute,
 * an exec plugin re-run when its credential expires (never, when it names no expiry).
 */
export class Credentials {
  private cached: { credential: Credential; until: number } | undefined;

  constructor(
    private readonly auth: KubeAuth,
    private readonly runExec: ExecRunner = runExecPlugin,
    private readonly now: () => number = Date.now,
  ) {}

  async current(): Promise<Credential> {
    if (this.cached !== undefined && this.now() < this.cached.until) return this.cached.credential;
    const auth = this.auth;
    switch (auth.kind) {
      case "none":
        return {};
      case "token":
        return { authorization: `Bearer ${auth.token}` };
      case "basic":
        return {
          authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`,
        };
      case "tokenFile": {
        const token = fs.readFileSync(auth.file, "utf8").trim();
        if (token === "") throw new Error(`token file ${auth.file} is empty`);
        return this.keep({ authorization: `Bearer ${token}` }, this.now() + TOKEN_FILE_TTL_MS);
      }
      case "exec": {
        const { credential, expires } = execCredentialOf(await this.runExec(auth.exec), auth.exec);
        return this.keep(credential, expires ?? Number.POSITIVE_INFINITY);
      }
    }
  }

  private keep(credential: Credential, until: number): Credential {
    this.cached = { credential, until };
    return credential;
  }
}

/** An ExecCredential's status (client.authentication.k8s.io v1/v1beta1), validated. */
export function execCredentialOf(
  stdout: string,
  exec: Pick<ExecConfig, "command">,
): { credential: Credential; expires?: number } {
  const where = `exec credential plugin ${exec.command}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`${where} printed no ExecCredential JSON`);
  }
  const status = (parsed as { status?: unknown } | null)?.status;
  if (typeof status !== "object" || status === null)
    throw new Error(`${where} printed an ExecCredential without status`);
  const { token, clientCertificateData, clientKeyData, expirationTimestamp } = status as Record<
    string,
    unknown
  >;
  const credential: Credential = {};
  if (typeof token === "string" && token !== "") credential.authorization = `Bearer ${token}`;
  if (typeof clientCertificateData === "string" && typeof clientKeyData === "string") {
    credential.cert = Buffer.from(clientCertificateData);
    credential.key = Buffer.from(clientKeyData);
  }
  if (credential.authorization === undefined && credential.cert === undefined)
    throw new Error(`${where} returned neither a token nor a client certificate`);
  const expires =
    typeof expirationTimestamp === "string" ? Date.parse(expirationTimestamp) : Number.NaN;
  return Number.isNaN(expires) ? { credential } : { credential, expires };
}

function runExecPlugin(exec: ExecConfig): Promise<string> {
  const info = {
    apiVersion: exec.apiVersion,
    kind: "ExecCredential",
    spec: { interactive: false },
  };
  return new Promise((resolve, reject) => {
    execFile(
      exec.command,
      exec.args,
      {
        env: { ...process.env, ...exec.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) },
        maxBuffer: EXEC_OUTPUT_LIMIT,
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new Error(
              `exec credential plugin ${exec.command} failed: ${error.message}${stderr ? `: ${stderr.slice(0, 500)}` : ""}`,
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}
