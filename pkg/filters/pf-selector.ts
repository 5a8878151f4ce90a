/**
 * A `pfNames` entry: `eth0` (every VF of PF eth0) or, as the SR-IOV device plugin accepts
 * it, `eth0#0-3,8` (VFs 0 to 3 and 8 of eth0). Ranges are inclusive.
 */
export interface PfSelector {
  pfName: string;
  /** Undefined: every VF of the PF. */
  vfRanges: readonly VfRange[] | undefined;
}

export interface VfRange {
  first: number;
  last: number;
}

export type PfSelectorParse = { selector: PfSelector } | { problem: string };

/**
 * A `rootDevices` entry: `0000:86:00.0` (every VF of the PF at that address) or, as the
 * SR-IOV device plugin accepts it, `0000:86:00.0#0-1,3` (VFs 0, 1 and 3 of it).
 */
export interface RootDeviceSelector {
  /** Lower case. */
  pciAddress: string;
  vfRanges: readonly VfRange[] | undefined;
}

export type RootDeviceSelectorParse = { selector: RootDeviceSelector } | { problem: string };

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;

export function parseRootDeviceSelector(text: string): RootDeviceSelectorParse {
  const hash = text.indexOf("#");
  const pciAddress = (hash === -1 ? text : text.slice(0, hash)).toLowerCase();
  if (!PCI_ADDRESS.test(pciAddress)) {
    return { problem: `"${text}": "${pciAddress}" is not a PCI address such as 0000:86:00.0` };
  }
  if (hash === -1) return { selector: { pciAddress, vfRanges: undefined } };
  const vfRanges = parseRanges(text, text.slice(hash + 1));
  return typeof vfRanges === "string"
    ? { problem: vfRanges }
    : { selector: { pciAddress, vfRanges } };
}

/** No NIC has this many VFs per PF; larger numbers are typos. */
const MAX_VF_INDEX = 65535;
const MAX_IFNAME_BYTES = 15;
const RANGE = /^(\d+)(?:-(\d+))?$/;

export function parsePfSelector(text: string): PfSelectorParse {
  const hash = text.indexOf("#");
  const pfName = hash === -1 ? text : text.slice(0, hash);
  const nameProblem = interfaceNameProblem(pfName);
  if (nameProblem !== undefined) return { problem: `"${text}": ${nameProblem}` };
  if (hash === -1) return { selector: { pfName, vfRanges: undefined } };
  const vfRanges = parseRanges(text, text.slice(hash + 1));
  return typeof vfRanges === "string" ? { problem: vfRanges } : { selector: { pfName, vfRanges } };
}

/** `0-3,8` of the entry `text`; returns what is wrong as a string. */
function parseRanges(text: string, list: string): VfRange[] | string {
  const vfRanges: VfRange[] = [];
  for (const part of list.split(",")) {
    const range = parseRange(part);
    if (typeof range === "string") return `"${text}": ${range}`;
    vfRanges.push(range);
  }
  return vfRanges;
}

function interfaceNameProblem(name: string): string | undefined {
  if (name === "") return "the PF name before '#' is empty";
  if (Buffer.byteLength(name, "utf8") > MAX_IFNAME_BYTES) {
    return `the PF name "${name}" is longer than ${MAX_IFNAME_BYTES} bytes, so no interface has it`;
  }
  return undefined;
}

/** `3` or `0-7`; returns what is wrong as a string. */
function parseRange(part: string): VfRange | string {
  const match = RANGE.exec(part);
  if (match === null) {
    return `"${part}" is not a VF index or range: write "eth0#0-3,8" (indices and first-last ranges, comma-separated)`;
  }
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (last > MAX_VF_INDEX) return `VF index ${last} is above ${MAX_VF_INDEX}`;
  if (first > last) return `range ${part} runs backwards: write ${last}-${first}`;
  return { first, last };
}

/** Whether the selector picks VF `vfID` of the PF whose interface is `pfNetdev`. */
export function pfSelectorMatches(
  selector: PfSelector,
  pfNetdev: string | undefined,
  vfID: number,
): boolean {
  return pfNetdev === selector.pfName && inRanges(selector.vfRanges, vfID);
}

/** Whether the selector picks VF `vfID` of the PF at `pfPciAddress`. */
export function rootDeviceSelectorMatches(
  selector: RootDeviceSelector,
  pfPciAddress: string,
  vfID: number,
): boolean {
  return pfPciAddress.toLowerCase() === selector.pciAddress && inRanges(selector.vfRanges, vfID);
}

function inRanges(vfRanges: readonly VfRange[] | undefined, vfID: number): boolean {
  return (
    vfRanges === undefined || vfRanges.some((range) => vfID >= range.first && vfID <= range.last)
  );
}
