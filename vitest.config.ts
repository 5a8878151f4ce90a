import fs from "node:fs";
import { defineConfig } from "vitest/config";

// Temp dirs of the unit, component and fuzz tiers live on tmpfs where the machine has one:
// an emulated host is tens of thousands of small files and links, and the 2,048-VF one
// builds in 1.5 s there against 45 s on this machine's disk (whose metadata writes
// dominate). sysfs is a memory file system too. The other tiers keep the default: their
// hosts hold the kubelet's and the daemon's unix sockets deep below the temp dir, where the
// longer prefix would pass the 107-byte limit, and their files are shared with containerd,
// the kubelet and a QEMU guest.
// Short: unix sockets (the checkpoint lock, instance markers) live below it, and a socket
// path holds at most 107 bytes.
const SHM_TMP = "/dev/shm/dra";
const fastTmp = (): Record<string, string> => {
  try {
    fs.mkdirSync(SHM_TMP, { recursive: true, mode: 0o700 });
    return { TMPDIR: SHM_TMP };
  } catch {
    return {};
  }
};

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
          env: fastTmp(),
          include: ["{lib,pkg,api,cmd}/**/*.test.ts"],
          exclude: ["**/*.component.test.ts", "**/node_modules/**"],
        },
      },
      {
        // One part of the daemon against an emulated host, real sockets, temp dirs and
        // subprocesses (the CNI plugins, the emulated kernel): `*.component.test.ts`.
        test: {
          name: "component",
          env: fastTmp(),
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
          env: fastTmp(),
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
        // The end-to-end cases that need several nodes: one local cluster of three.
        test: {
          name: "multinode",
          include: ["test/multinode/**/*.test.ts"],
          globalSetup: ["test/multinode/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 1_200_000,
        },
      },
      {
        // A Kubernetes upgrade under pods holding VFs (make test-upgrade, not in .ci/run).
        test: {
          name: "upgrade",
          include: ["test/upgrade/**/*.test.ts"],
          globalSetup: ["test/upgrade/global-setup.ts"],
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
