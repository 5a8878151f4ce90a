import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  draSocketName,
  isDraSocket,
  isDriverRegistrationSocket,
  MAX_SOCKET_PATH_BYTES,
  registrationSocketName,
} from "./socket-names.js";

const DRIVER = "sriovnetwork.openshift.io";
const UID = "6a1e0b57-3f55-4bb3-9b2e-0c6f4a1f7d21";
const REGISTRY = "/var/lib/kubelet/plugins_registry";

describe("registrationSocketName", () => {
  it("is <driver>-reg.sock without a pod UID", () => {
    expect(registrationSocketName(REGISTRY, DRIVER)).toBe(`${DRIVER}-reg.sock`);
  });

  it("carries the pod UID when it fits", () => {
    expect(registrationSocketName(REGISTRY, DRIVER, UID)).toBe(`${DRIVER}-${UID}-reg.sock`);
  });

  it("falls back to a hash of the UID, then of driver and UID, when the path gets too long", () => {
    const deep = "/" + "d".repeat(40);
    const hashed = registrationSocketName(deep, DRIVER, UID);
    expect(hashed).toMatch(
      new RegExp(`^${DRIVER.replace(/\./g, "\\.")}-[A-Za-z0-9_-]{11}-reg\\.sock$`),
    );
    expect(Buffer.byteLength(path.join(deep, hashed))).toBeLessThanOrEqual(MAX_SOCKET_PATH_BYTES);

    const deeper = "/" + "d".repeat(70);
    const shortest = registrationSocketName(deeper, DRIVER, UID);
    expect(shortest).toMatch(/^dra-[A-Za-z0-9_-]{22}-reg\.sock$/);
    expect(registrationSocketName(deeper, DRIVER, "other-uid")).not.toBe(shortest);
  });
});

describe("draSocketName", () => {
  it("is dra.sock, or dra-<pod UID>.sock, or hashed when too long", () => {
    const dir = `/var/lib/kubelet/plugins/${DRIVER}`;
    expect(draSocketName(dir)).toBe("dra.sock");
    expect(draSocketName(dir, UID)).toBe(`dra-${UID}.sock`);
    const long = draSocketName("/" + "d".repeat(70), UID);
    expect(long).toMatch(/^dra-[A-Za-z0-9_-]{11}\.sock$/);
  });
});

describe("socket families", () => {
  it("recognises this driver's registration sockets only", () => {
    expect(isDriverRegistrationSocket(`${DRIVER}-reg.sock`, DRIVER)).toBe(true);
    expect(isDriverRegistrationSocket(`${DRIVER}-${UID}-reg.sock`, DRIVER)).toBe(true);
    expect(isDriverRegistrationSocket(`gpu.example.com-reg.sock`, DRIVER)).toBe(false);
    expect(isDriverRegistrationSocket(`${DRIVER}-reg.sock.bak`, DRIVER)).toBe(false);
    expect(isDriverRegistrationSocket(`x${DRIVER}-reg.sock`, DRIVER)).toBe(false);
  });

  it("recognises DRA service sockets", () => {
    expect(isDraSocket("dra.sock")).toBe(true);
    expect(isDraSocket(`dra-${UID}.sock`)).toBe(true);
    expect(isDraSocket("checkpoint.json")).toBe(false);
    expect(isDraSocket("other.sock")).toBe(false);
  });
});
