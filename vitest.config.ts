import { defineConfig } from "vitest/config";

// Six suites: unit and component tests sit beside the code (component: emulated host,
// sockets, processes); fuzz tests generate hostile input;
// integration tests talk to a real control plane; end-to-end tests need the real kubelet
// and containerd; the real-kernel tier runs the node daemon in a QEMU guest on real VFs.
export default defineConfig({
  test: {
    projects: [
      {
        // Pure code beside it: no emulated host, temp dirs, sockets or processes.
        test: {
          name: "unit",
          include: ["{lib,pkg,api,cmd}/**/*.test.ts"],
          exclude: ["**/*.component.test.ts", "**/node_modules/**"],
        },
      },
      {
        // One part of the daemon against an emulated host, real sockets, temp dirs and
        // subprocesses (the CNI plugins, the emulated kernel): `*.component.test.ts`.
        test: {
          name: "component",
          include: ["{lib,pkg,api,cmd}/**/*.component.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
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
