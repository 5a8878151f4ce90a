import { defineConfig } from "vitest/config";

// Five suites: unit tests sit beside the code; fuzz tests generate hostile input;
// integration tests talk to a real control plane; end-to-end tests need the real kubelet
// and containerd; the real-kernel tier runs the node daemon in a QEMU guest on real VFs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{pkg,api,cmd}/**/*.test.ts"],
        },
      },
      {
        // Generated inputs against the decoders, discovery of corrupted emulated hosts and
        // the daemon's HTTP port: a few minutes here, longer with `make fuzz`.
        test: {
          name: "fuzz",
          include: ["test/fuzz/**/*.test.ts"],
          testTimeout: 300_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 1_200_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 1_200_000,
        },
      },
      {
        test: {
          name: "real-kernel",
          include: ["test/real-kernel/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts", "test/real-kernel/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
