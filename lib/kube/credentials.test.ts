import { describe, expect, it } from "vitest";
import { Credentials, execCredentialOf } from "./credentials.js";
import type { ExecConfig } from "./kubeconfig.js";

const exec: ExecConfig = {
  apiVersion: "client.authentication.k8s.io/v1",
  command: "get-token",
  args: [],
  env: {},
};
const printed = (status: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: exec.apiVersion, kind: "ExecCredential", status });

describe("execCredentialOf", () => {
  it("takes the token, a client certificate and the expiry", () => {
    expect(
      execCredentialOf(
        printed({
          token: "t",
          clientCertificateData: "C",
          clientKeyData: "K",
          expirationTimestamp: "2030-01-01T00:00:00Z",
        }),
        exec,
      ),
    ).toEqual({
      credential: { authorization: "Bearer t", cert: Buffer.from("C"), key: Buffer.from("K") },
      expires: Date.parse("2030-01-01T00:00:00Z"),
    });
  });

  it.each([
    ["not JSON", "oops", /no ExecCredential JSON/],
    ["no status", "{}", /without status/],
    ["an empty status", printed({}), /neither a token nor a client certificate/],
  ])("refuses %s, naming the plugin", (_name, stdout, error) => {
    expect(() => execCredentialOf(stdout, exec)).toThrow(error);
    expect(() => execCredentialOf(stdout, exec)).toThrow(/get-token/);
  });
});

describe("Credentials", () => {
  it("runs an exec plugin again only once its credential expired", async () => {
    let now = 1_000;
    let runs = 0;
    const credentials = new Credentials(
      { kind: "exec", exec },
      () => {
        runs++;
        return Promise.resolve(
          printed({ token: `t${runs}`, expirationTimestamp: new Date(now + 60_000).toISOString() }),
        );
      },
      () => now,
    );
    expect(await credentials.current()).toEqual({ authorization: "Bearer t1" });
    now += 59_000;
    expect(await credentials.current()).toEqual({ authorization: "Bearer t1" });
    now += 2_000;
    expect(await credentials.current()).toEqual({ authorization: "Bearer t2" });
    expect(runs).toBe(2);
  });

  it("sends basic auth and plain tokens as headers", async () => {
    expect(
      await new Credentials({ kind: "basic", username: "a", password: "b" }).current(),
    ).toEqual({
      authorization: `Basic ${Buffer.from("a:b").toString("base64")}`,
    });
    expect(await new Credentials({ kind: "none" }).current()).toEqual({});
  });
});
