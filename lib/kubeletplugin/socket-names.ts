import { createHash } from "node:crypto";
import path from "node:path";

/**
 * Longest unix socket path Node.js can bind: sun_path holds 108 bytes on Linux, one of
 * them the terminating NUL.
 */
export const MAX_SOCKET_PATH_BYTES = 107;

const REGISTRATION_SUFFIX = "-reg.sock";

/**
 * The registration socket's file name in the kubelet's plugins_registry directory, the
 * same scheme as k8s.io/dynamic-resource-allocation/kubeletplugin:
 * `<driver>-reg.sock`, or with a pod UID (rolling updates: old and new DaemonSet pods
 * register side by side, kubelet ≥ 1.33) the first of these that fits:
 * `<driver>-<pod UID>-reg.sock`, `<driver>-<hash of UID>-reg.sock`,
 * `dra-<hash of driver and UID>-reg.sock`.
 */
export function registrationSocketName(
  registryDir: string,
  driverName: string,
  podUid?: string,
): string {
  if (!podUid) return driverName + REGISTRATION_SUFFIX;
  const candidates = [
    `${driverName}-${podUid}${REGISTRATION_SUFFIX}`,
    `${driverName}-${shortHash(podUid, 8)}${REGISTRATION_SUFFIX}`,
    `dra-${shortHash(`${driverName}\0${podUid}`, 16)}${REGISTRATION_SUFFIX}`,
  ];
  return candidates.find((name) => fits(path.join(registryDir, name))) ?? candidates.at(-1)!;
}

/**
 * The DRA service socket's file name in the driver's own directory under the kubelet's
 * plugins directory: `dra.sock`, or per pod `dra-<pod UID>.sock` (`dra-<hash of UID>.sock`
 * when that is too long). The kubelet learns it from GetInfo, so only uniqueness matters.
 */
export function draSocketName(pluginDir: string, podUid?: string): string {
  if (!podUid) return "dra.sock";
  const full = `dra-${podUid}.sock`;
  return fits(path.join(pluginDir, full)) ? full : `dra-${shortHash(podUid, 8)}.sock`;
}

/** Registration socket names this driver's instances use, whatever their pod UID. */
export function isDriverRegistrationSocket(fileName: string, driverName: string): boolean {
  return (
    fileName === driverName + REGISTRATION_SUFFIX ||
    (fileName.startsWith(`${driverName}-`) && fileName.endsWith(REGISTRATION_SUFFIX))
  );
}

/** DRA service socket names in the driver's directory. */
export function isDraSocket(fileName: string): boolean {
  return fileName === "dra.sock" || (fileName.startsWith("dra-") && fileName.endsWith(".sock"));
}

export function fits(socketPath: string): boolean {
  return Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES;
}

function shortHash(text: string, bytes: number): string {
  return createHash("sha256").update(text).digest().subarray(0, bytes).toString("base64url");
}
