import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The cache the hack/ build scripts use (hack/lib/common.sh). */
const CACHE_ROOT =
  process.env["DRA_SRIOV_CACHE"] ??
  path.join(process.env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache"), "dra-driver-sriov");

/**
 * Kernel modules of the guest's kernel beyond the few its initramfs loads (a container
 * runtime's pod network wants a bridge and veth pairs): the `.ko` files, host paths the
 * guest reads over its 9p root, in the order `insmod` takes them (dependencies first).
 * They come from the Debian package of that kernel (`apt-get download`, as
 * hack/real-kernel/build-guest.sh gets the kernel), cached per kernel release and module set.
 * Asynchronous: a test talking to a guest keeps its event loop, so its kept-alive
 * connections to the agent see the agent close them instead of being reused half-closed.
 */
export async function guestKernelModules(
  release: string,
  modules: readonly string[],
): Promise<string[]> {
  if (!/^[0-9][0-9A-Za-z.+_-]*$/.test(release))
    throw new Error(`unexpected kernel release ${release}`);
  const dir = path.join(CACHE_ROOT, "guest-modules", release, [...modules].sort().join("+"));
  const orderFile = path.join(dir, "order");
  if (!fs.existsSync(orderFile)) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const tmp = fs.mkdtempSync(path.join(path.dirname(dir), ".build-"));
    try {
      await run("apt-get", ["download", "-q", `linux-image-${release}`], { cwd: tmp });
      const deb = fs.readdirSync(tmp).find((name) => name.endsWith(".deb"));
      if (deb === undefined)
        throw new Error(`apt-get download linux-image-${release} left no .deb`);
      const tree = path.join(tmp, "kernel");
      await run("dpkg-deb", ["-x", path.join(tmp, deb), tree]);
      await run("depmod", ["-b", tree, release]);
      const out = path.join(tmp, "out");
      fs.mkdirSync(out);
      const order: string[] = [];
      for (const module of modules) {
        const { stdout: shown } = await run("modprobe", [
          ...["-d", tree, "-S", release, "--show-depends", module],
        ]);
        for (const [, file] of shown.matchAll(/^insmod (\S+)/gm)) {
          const name = path.basename(file!);
          if (order.includes(name)) continue;
          fs.copyFileSync(file!, path.join(out, name));
          order.push(name);
        }
        const wanted = `${module.replaceAll("-", "_")}.ko`;
        if (!order.some((name) => name.replaceAll("-", "_") === wanted)) {
          throw new Error(`module ${module} is not in linux-image-${release}`);
        }
      }
      fs.writeFileSync(path.join(out, "order"), `${order.join("\n")}\n`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(out, dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return fs
    .readFileSync(orderFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((name) => path.join(dir, name));
}
