import { describe, expect, it } from "vitest";
import type { DeviceHealth } from "./device-health.js";
import {
  cutMessage,
  HEALTH_CHECK_TIMEOUT_SECONDS,
  healthResponseOf,
  MAX_RESPONSE_BYTES,
  messageBudgetOf,
  RESEND_EVERY_MS,
  wireHealthStatusOf,
} from "./device-health-service.js";
import { loadKubeletProtos } from "./protos.js";

const healthy = (device: string, message = ""): DeviceHealth => ({
  device,
  state: "Healthy",
  message,
  sinceMs: 0,
});

describe("wireHealthStatusOf", () => {
  it("maps each state to the kubelet's enum", () => {
    expect(wireHealthStatusOf("Healthy")).toBe("HEALTHY");
    expect(wireHealthStatusOf("Unhealthy")).toBe("UNHEALTHY");
    expect(wireHealthStatusOf("Unknown")).toBe("UNKNOWN");
  });
});

describe("cutMessage", () => {
  it("keeps a message that fits", () => {
    expect(cutMessage("PF enp1s0f0 has no carrier", 1024)).toBe("PF enp1s0f0 has no carrier");
    expect(cutMessage("x".repeat(1024), 1024)).toBe("x".repeat(1024));
  });

  it("cuts a long message to the limit, ending in an ellipsis", () => {
    const cut = cutMessage("x".repeat(5000), 1024);
    expect(Buffer.byteLength(cut)).toBe(1024);
    expect(cut).toBe("x".repeat(1021) + "…");
  });

  it("counts bytes as the kubelet does and never splits a character", () => {
    for (const text of ["é".repeat(700), "🔥".repeat(400), "a" + "€".repeat(500)]) {
      const cut = cutMessage(text, 1024);
      expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024);
      expect(Buffer.byteLength(cut)).toBeGreaterThan(1024 - 4 - 3);
      expect(cut.endsWith("…")).toBe(true);
      expect(text.startsWith(cut.slice(0, -1))).toBe(true);
      // Round-trips through UTF-8: no half of a surrogate pair or of a sequence.
      expect(Buffer.from(cut).toString()).toBe(cut);
    }
  });

  it("gives nothing when not even the ellipsis fits", () => {
    expect(cutMessage("too long", 2)).toBe("");
    expect(cutMessage("too long", 0)).toBe("");
  });
});

describe("healthResponseOf", () => {
  it("reports every device of the pool with the timeout and the time it is stated", () => {
    const response = healthResponseOf(
      [
        healthy("0000-3b-02-0", "ok"),
        {
          device: "0000-3b-02-1",
          state: "Unhealthy",
          reason: "PFLinkDown",
          message: "PF enp59s0f0 has no carrier",
          sinceMs: 5,
        },
        { device: "0000-3b-02-2", state: "Unknown", message: "", sinceMs: 5 },
      ],
      "node-1",
      1_700_000_000_999,
    );
    const common = {
      last_updated_time: "1700000000",
      health_check_timeout_seconds: String(HEALTH_CHECK_TIMEOUT_SECONDS),
    };
    expect(response.devices).toEqual([
      {
        device: { pool_name: "node-1", device_name: "0000-3b-02-0" },
        health: "HEALTHY",
        message: "ok",
        ...common,
      },
      {
        device: { pool_name: "node-1", device_name: "0000-3b-02-1" },
        health: "UNHEALTHY",
        message: "PF enp59s0f0 has no carrier",
        ...common,
      },
      {
        device: { pool_name: "node-1", device_name: "0000-3b-02-2" },
        health: "UNKNOWN",
        message: "",
        ...common,
      },
    ]);
  });

  it("repeats the picture well within the timeout it states", () => {
    expect(RESEND_EVERY_MS * 3).toBeLessThanOrEqual(HEALTH_CHECK_TIMEOUT_SECONDS * 1000);
  });

  it("cuts every message to 1,024 bytes", () => {
    const [device] = healthResponseOf([healthy("d", "y".repeat(3000))], "node-1", 0).devices;
    expect(Buffer.byteLength(device!.message)).toBe(1024);
  });

  it("shortens messages further when the whole picture would exceed the kubelet's 4 MiB", () => {
    const devices = Array.from({ length: 6000 }, (_, index) =>
      healthy(`0000-${String(index).padStart(6, "0")}`, "€".repeat(1000)),
    );
    const pool = "a-node-with-a-rather-long-name.example.com";
    const budget = messageBudgetOf(devices, pool);
    expect(budget).toBeLessThan(1024);
    expect(budget).toBeGreaterThan(500);

    const response = healthResponseOf(devices, pool, Date.now());
    const bytes = loadKubeletProtos().draHealthV1.NodeWatchResources.responseSerialize(response);
    expect(bytes.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(bytes.length).toBeGreaterThan(MAX_RESPONSE_BYTES * 0.9);
    expect(response.devices[0]!.message.endsWith("…")).toBe(true);
  });

  it("keeps full messages when the picture fits", () => {
    expect(messageBudgetOf([healthy("d", "x".repeat(1024))], "node-1")).toBe(1024);
    expect(messageBudgetOf([], "node-1")).toBe(1024);
  });
});
