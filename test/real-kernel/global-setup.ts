import { spawnSync } from "node:child_process";
import path from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    guestKernel: string;
    guestInitramfs: string;
  }
}

const repoRoot = path.resolve(import.meta.dirname, "../..");

/**
 * The guest of the real-kernel tier (hack/real-kernel/build-guest.sh: a Debian kernel and
 * an initramfs, cached; seconds once built) and a QEMU that emulates the Intel 82576
 * (`-device igb`, QEMU ≥ 8, hack/prereqs.sh installs it from bookworm-backports).
 */
export default function setup(project: TestProject): void {
  const devices = spawnSync("qemu-system-x86_64", ["-device", "help"], { encoding: "utf8" });
  if (devices.error || !/name "igb"/.test(devices.stdout)) {
    throw new Error(
      "qemu-system-x86_64 with the igb device (QEMU >= 8) is needed: run hack/prereqs.sh (apt-get install -t bookworm-backports qemu-system-x86)",
    );
  }
  const build = spawnSync("bash", [path.join(repoRoot, "hack/real-kernel/build-guest.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (build.status !== 0)
    throw new Error(`hack/real-kernel/build-guest.sh failed (exit ${build.status})`);
  const value = (name: string) => {
    const match = new RegExp(`^${name}=(.+)$`, "m").exec(build.stdout);
    if (!match) throw new Error(`hack/real-kernel/build-guest.sh printed no ${name}=`);
    return match[1]!;
  };
  project.provide("guestKernel", value("GUEST_KERNEL"));
  project.provide("guestInitramfs", value("GUEST_INITRAMFS"));
}
