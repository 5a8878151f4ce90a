import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadEnvelope, TTRPC_PROTO_FILES } from "./envelope.js";

describe("the ttrpc envelope's wire format", () => {
  const envelope = loadEnvelope();

  it("numbers Request fields service=1 method=2 payload=3 timeout_nano=4 metadata=5", () => {
    const bytes = envelope.encodeRequest({
      service: "s",
      method: "m",
      payload: Buffer.from("p"),
      timeout_nano: 5,
      metadata: [{ key: "k", value: "v" }],
    });
    expect(bytes.toString("hex")).toBe(
      "0a0173" + "12016d" + "1a0170" + "2005" + "2a06" + "0a016b" + "120176",
    );
    expect(envelope.decodeRequest(bytes)).toEqual({
      service: "s",
      method: "m",
      payload: Buffer.from("p"),
      timeout_nano: 5,
      metadata: [{ key: "k", value: "v" }],
    });
  });

  it("numbers Response fields status=1 (code=1, message=2) and payload=2", () => {
    const bytes = Buffer.from("0a05" + "080c" + "120178" + "120171", "hex");
    expect(envelope.decodeResponse(bytes)).toEqual({
      status: { code: 12, message: "x" },
      payload: Buffer.from("q"),
    });
  });

  it("reads a response without status as one with no status", () => {
    expect(envelope.decodeResponse(Buffer.from("120171", "hex"))).toEqual({
      status: null,
      payload: Buffer.from("q"),
    });
  });

  it("skips status details it does not know", () => {
    // details (field 3): one Any { type_url "t" }
    const status = "080d" + "120178" + "1a03" + "0a0174";
    expect(envelope.decodeResponse(Buffer.from("0a0a" + status, "hex")).status).toEqual({
      code: 13,
      message: "x",
    });
  });

  it("names a missing definition file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envelope-"));
    try {
      fs.mkdirSync(path.join(dir, "ttrpc"));
      fs.copyFileSync(
        path.resolve(import.meta.dirname, "../../api/proto", TTRPC_PROTO_FILES[0]),
        path.join(dir, TTRPC_PROTO_FILES[0]),
      );
      expect(() => loadEnvelope(dir)).toThrow(/status\.proto is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
