import fs from "node:fs";
import path from "node:path";
import { loadKubeletProtos } from "../../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../../lib/kubeletplugin/testing/fake-kubelet.js";
import { waitFor } from "../../integration/kube.js";
import type { Guest } from "./guest.js";

const DRIVER = "sriovnetwork.openshift.io";
/** The daemon's directories in the guest: its fresh tmpfs /run, never the host's files. */
export const KUBELET_DIR = "/run/kubelet";
export const DAEMON_LOG = "/run/kubelet-plugin.log";
const REGISTRATION_SOCKET = `${KUBELET_DIR}/plugins_registry/${DRIVER}-reg.sock`;
const DRA_SOCKET = `${KUBELET_DIR}/plugins/${DRIVER}/dra.sock`;

/**
 * The host's kubeconfig as the guest needs it, written under `dir` before the guest boots:
 * the guest reaches the API server at 10.0.2.2 (QEMU user networking), named "kubernetes"
 * in its /etc/hosts, a name the serving certificate has.
 */
export function writeGuestKubeconfig(hostKubeconfig: string, dir: string): string {
  const file = path.join(dir, "kubeconfig");
  fs.writeFileSync(
    file,
    fs
      .readFileSync(hostKubeconfig, "utf8")
      .replace(/https:\/\/127\.0\.0\.1:/g, "https://kubernetes:"),
  );
  return file;
}

export function guestDaemonLog(guest: Guest): Promise<string> {
  return guest.read(DAEMON_LOG).catch((error: unknown) => String(error));
}

/**
 * Starts `kubelet-plugin` in the guest as the DaemonSet runs it, with `args` beside the
 * node, kubeconfig, namespace and kubelet directory, and registers it as the kubelet
 * would (through relay port 7001). Returns a fresh kubelet client and the DRA socket's
 * endpoint on the host (relay port 7002). A failure carries the daemon's log.
 */
export async function startGuestDaemon(
  guest: Guest,
  options: {
    nodeName: string;
    namespace: string;
    kubeconfig: string;
    args: readonly string[];
    env?: Record<string, string>;
    registrationTimeoutMs: number;
  },
): Promise<{ kubelet: FakeKubelet; draEndpoint: string }> {
  // The kubelet makes its plugin registry; the daemon refuses to start without one.
  await guest.sh(`mkdir -p ${KUBELET_DIR}/plugins_registry`);
  await guest.spawnCli(
    "daemon",
    [
      "kubelet-plugin",
      ...["--node-name", options.nodeName, "--kubeconfig", options.kubeconfig],
      ...["--namespace", options.namespace, "--kubelet-dir", KUBELET_DIR],
      ...["--log-level", "debug", ...options.args],
    ],
    { env: options.env ?? {}, logFile: DAEMON_LOG },
  );
  const registration = await guest.relay(7001, REGISTRATION_SOCKET);
  const registrar = new FakeKubelet(loadKubeletProtos());
  try {
    await waitFor(
      "the daemon in the guest to register",
      () => registrar.register(registration).then(() => true),
      options.registrationTimeoutMs,
    );
  } catch (error) {
    throw new Error(`${String(error)}\nthe daemon's log:\n${await guestDaemonLog(guest)}`, {
      cause: error,
    });
  } finally {
    registrar.close();
  }
  return {
    kubelet: new FakeKubelet(loadKubeletProtos()),
    draEndpoint: await guest.relay(7002, DRA_SOCKET),
  };
}
