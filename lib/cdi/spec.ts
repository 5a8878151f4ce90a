/** The subset of the CDI specification this driver writes. */
export interface CdiDeviceNode {
  /** Path inside the container. */
  path: string;
  /** Path on the host when it differs (an emulated host, or a host root other than /). */
  hostPath?: string;
  permissions?: string;
}

export interface CdiContainerEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
}

export interface CdiDevice {
  name: string;
  containerEdits: CdiContainerEdits;
}

export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  devices: CdiDevice[];
  containerEdits?: CdiContainerEdits;
}

/**
 * The lowest CDI version that can express the spec, so older runtimes accept it:
 * 0.5.0 brought `hostPath` on device nodes and device names starting with a digit
 * (ours start with the claim UID); nothing we write needs more.
 */
export function minimumCdiVersion(spec: Omit<CdiSpec, "cdiVersion">): string {
  const usesHostPath = [spec.containerEdits, ...spec.devices.map((d) => d.containerEdits)].some(
    (edits) => edits?.deviceNodes?.some((node) => node.hostPath !== undefined),
  );
  const nameStartsWithDigit = spec.devices.some((device) => /^[0-9]/.test(device.name));
  return usesHostPath || nameStartsWithDigit ? "0.5.0" : "0.3.0";
}

export function hasEdits(edits: CdiContainerEdits | undefined): boolean {
  return (edits?.env?.length ?? 0) > 0 || (edits?.deviceNodes?.length ?? 0) > 0;
}

/** `<kind>=<name>`: how a CDI device is named in claim results and container configs. */
export function qualifiedDeviceName(kind: string, name: string): string {
  return `${kind}=${name}`;
}
