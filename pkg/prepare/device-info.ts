import fs from "node:fs";
import path from "node:path";
import { isPciAddress } from "../host/pci-address.js";
import type { HostPaths } from "../host/paths.js";
import { pciDeviceInfo } from "../multus/network-status.js";
import type { PreparedClaim } from "./prepared-claim.js";

/**
 * Where device plugins leave device information for Multus (network-attachment-definition
 * client, `getDPDeviceInfoPath`): Multus copies `<resourceName>-<deviceID>-device.json` for
 * the CNI and reports it as `device-info` in the pod's network-status.
 */
export const DEVICE_INFO_DIR = "/var/run/k8s.cni.cncf.io/devinfo/dp";

/** A ResourceClaim's name (a DNS subdomain), the `resourceName` Multus looks it up by. */
const CLAIM_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_CLAIM_NAME = 253;

/**
 * The file name Multus v4.2.2 reads for a device of a claim: the NetworkAttachmentDefinition's
 * `resourceName` is the claim's name, the device ID its PCI address (its CDI name). Both are
 * checked, so the name never leaves the directory.
 */
export function deviceInfoFileName(claimName: string, pciAddress: string): string {
  if (claimName.length > MAX_CLAIM_NAME || !CLAIM_NAME.test(claimName)) {
    throw new Error(`${JSON.stringify(claimName.slice(0, 80))} is not a ResourceClaim name`);
  }
  if (!isPciAddress(pciAddress)) {
    throw new Error(`${JSON.stringify(pciAddress.slice(0, 80))} is not a PCI address`);
  }
  return `${claimName}-${pciAddress}-device.json`;
}

/** The claim's device-info files on the host, one per prepared device. */
function deviceInfoFiles(
  paths: HostPaths,
  claim: Pick<PreparedClaim, "name" | "devices">,
): { file: string; pciAddress: string }[] {
  return claim.devices.map((device) => ({
    file: path.join(paths.at(DEVICE_INFO_DIR), deviceInfoFileName(claim.name, device.pciAddress)),
    pciAddress: device.pciAddress,
  }));
}

/** Writes each device's file (type pci), atomically: Multus may read at any moment. */
export function writeDeviceInfo(
  paths: HostPaths,
  claim: Pick<PreparedClaim, "name" | "devices">,
): void {
  const files = deviceInfoFiles(paths, claim);
  if (files.length === 0) return;
  fs.mkdirSync(paths.at(DEVICE_INFO_DIR), { recursive: true });
  for (const { file, pciAddress } of files) {
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(pciDeviceInfo(pciAddress))}\n`, {
      mode: 0o644,
    });
    fs.renameSync(`${file}.tmp`, file);
  }
}

/**
 * Removes the claim's files; missing ones are fine (unprepare is idempotent), and a claim
 * whose name could not name a file never had one.
 */
export function removeDeviceInfo(
  paths: HostPaths,
  claim: Pick<PreparedClaim, "name" | "devices">,
): void {
  let files: { file: string }[];
  try {
    files = deviceInfoFiles(paths, claim);
  } catch {
    return;
  }
  for (const { file } of files) {
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.tmp`, { force: true });
  }
}
