import net from "node:net";
import path from "node:path";
import type { ContainerdEnv } from "../../support/cri/containerd.js";
import { guestKernelModules } from "./kernel-modules.js";
import { repoRoot, type Guest } from "./guest.js";

/** What containerd's pod network needs of the kernel that the guest's initramfs lacks. */
const RUNTIME_MODULES = ["bridge", "veth"] as const;

/**
 * Makes the guest able to run containers: the modules of its kernel a pod network needs
 * (loaded from the host's cache over the 9p root) and a cgroup v2 hierarchy for runc.
 */
export async function prepareGuestForContainers(guest: Guest): Promise<void> {
  const release = (await guest.sh("uname -r")).trim();
  const modules = await guestKernelModules(release, RUNTIME_MODULES);
  const load = modules
    .map((file) => {
      const name = path.basename(file, ".ko").replaceAll("-", "_");
      return `[ -d /sys/module/${name} ] || insmod ${JSON.stringify(file)}`;
    })
    .join("\n");
  await guest.sh(load);
  await guest.sh("mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup");
}

/**
 * hack/containerd.sh up in the guest, as a user runs it on a node: a real containerd 2.x
 * with CRI, NRI and CDI, its state under the guest's /run. `env` adds the script's
 * settings (DRA_SRIOV_NRI_REQUEST_TIMEOUT, ...). Returns its env.json and how long it took.
 */
export async function containerdUpInGuest(
  guest: Guest,
  stateDir: string,
  env: Record<string, string> = {},
): Promise<{ env: ContainerdEnv; ms: number }> {
  const started = Date.now();
  const result = await guest.exec(["bash", path.join(repoRoot, "hack/containerd.sh"), "up"], {
    env: { ...env, DRA_SRIOV_CONTAINERD_STATE: stateDir },
    timeoutMs: 300_000,
  });
  if (result.code !== 0) {
    throw new Error(
      `hack/containerd.sh up in the guest exited ${result.code ?? result.signal}:\n${result.stderr}`,
    );
  }
  const ms = Date.now() - started;
  return { env: JSON.parse(await guest.read(`${stateDir}/env.json`)) as ContainerdEnv, ms };
}

/**
 * A unix socket on the host that forwards every connection to a TCP address (a relay port
 * of the guest): for clients that only speak to unix sockets, such as the tests' CriClient.
 */
export async function unixSocketForwarder(
  socketPath: string,
  target: string,
): Promise<{ close(): Promise<void> }> {
  const [host, port] = target.split(":");
  const connections = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host!);
    connections.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      connections.delete(client);
      connections.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on("error", close);
      socket.on("close", close);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
