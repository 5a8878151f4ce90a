import { describe, expect, it } from "vitest";
import { CniError, CniErrorCode, pluginFailure } from "./errors.js";

const exit = { exitCode: 1, signal: null, stdout: "", stderr: "" };

describe("pluginFailure", () => {
  it("takes the plugin's CNI error result", () => {
    expect(
      pluginFailure({
        ...exit,
        stdout: JSON.stringify({
          cniVersion: "1.0.0",
          code: 7,
          msg: "Invalid Configuration",
          details: "Network 192.168.0.0/31 too small to allocate from.",
        }),
      }),
    ).toEqual({
      code: 7,
      msg: "Invalid Configuration",
      details: "Network 192.168.0.0/31 too small to allocate from.",
    });
    // Plugins built on the reference skeleton print code 999 and no cniVersion.
    expect(pluginFailure({ ...exit, stdout: '{"code":999,"msg":"Link not found"}' })).toEqual({
      code: 999,
      msg: "Link not found",
      details: "",
    });
  });

  it("falls back to the end of stderr, then stdout, and says how the plugin ended", () => {
    expect(pluginFailure({ ...exit, exitCode: 2, stdout: "oops", stderr: "panic: x\n" })).toEqual({
      code: CniErrorCode.EXEC_FAILED,
      msg: "exited with status 2 without a CNI error result; its output ends: panic: x",
      details: "",
    });
    expect(pluginFailure({ ...exit, stdout: '{"msg":"no code"}' }).msg).toBe(
      'exited with status 1 without a CNI error result; its output ends: {"msg":"no code"}',
    );
    expect(pluginFailure({ ...exit, exitCode: null, signal: "SIGSEGV" }).msg).toBe(
      "killed by SIGSEGV silently",
    );
    const long = pluginFailure({ ...exit, stderr: `start${"x".repeat(5000)}end` }).msg;
    expect(long).toMatch(/…x+end$/);
    expect(long).not.toContain("start");
  });
});

describe("CniError", () => {
  it("names plugin, command, network and the plugin's own words", () => {
    const error = new CniError({
      code: 7,
      plugin: "host-device",
      command: "ADD",
      network: "vf-net",
      msg: "Invalid Configuration",
      details: "no device",
    });
    expect(error.message).toBe(
      'CNI plugin "host-device" ADD for network "vf-net" failed (code 7): Invalid Configuration: no device',
    );
    expect(error).toMatchObject({ code: 7, plugin: "host-device", command: "ADD" });
    expect(error.details).toBe("no device");
    expect(
      new CniError({
        code: CniErrorCode.INVALID_REQUEST,
        plugin: "",
        command: "DEL",
        network: "n",
        msg: "bad",
      }).message,
    ).toBe('CNI DEL for network "n" failed: bad');
  });
});
