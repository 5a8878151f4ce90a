import { defineConfig } from "vitest/config";

// Three suites: unit tests sit beside the code; integration tests talk to a real
// control plane; end-to-end tests need the real kubelet and containerd.
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
    ],
  },
});
