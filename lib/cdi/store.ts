import fs from "node:fs";
import path from "node:path";
import { isJsonObject } from "../util/json.js";
import { qualifiedDeviceName, type CdiSpec } from "./spec.js";

/** What a claim UID may be in a file name of ours. */
const CLAIM_UID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Larger spec files are not ours to read (ours hold a claim's few devices). */
const MAX_SPEC_BYTES = 1 << 20;

/**
 * Spec files in the CDI directory, one per claim, named so the runtime picks them up
 * (`*.json`) and so ours are recognisable (`<vendor>-<class>_<claimUID>.json`).
 * Writes are atomic: the runtime may read the directory at any moment.
 */
export class CdiSpecStore {
  constructor(
    private readonly cdiRoot: string,
    /** CDI kind, e.g. `sriovnetwork.openshift.io/vf`. */
    private readonly kind: string,
  ) {}

  fileFor(claimUid: string): string {
    // The UID is one file name's part: nothing that could leave the directory.
    if (!CLAIM_UID.test(claimUid)) {
      throw new Error(`${JSON.stringify(claimUid.slice(0, 80))} is not a claim UID`);
    }
    return path.join(this.cdiRoot, `${this.kind.replace("/", "-")}_${claimUid}.json`);
  }

  write(claimUid: string, spec: CdiSpec): string {
    const file = this.fileFor(claimUid);
    fs.mkdirSync(this.cdiRoot, { recursive: true });
    const temp = `${file}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(spec, null, 2), { mode: 0o644 });
    fs.renameSync(temp, file);
    return file;
  }

  exists(claimUid: string): boolean {
    return fs.existsSync(this.fileFor(claimUid));
  }

  /** Removes the claim's spec; a missing file is fine (unprepare is idempotent). */
  remove(claimUid: string): void {
    fs.rmSync(this.fileFor(claimUid), { force: true });
    fs.rmSync(`${this.fileFor(claimUid)}.tmp`, { force: true });
  }

  /**
   * The qualified names (`<kind>=<name>`) of the devices the claim's spec file defines; none
   * when it is missing, too large or not a spec (the runtime would skip it too).
   */
  deviceIds(claimUid: string): string[] {
    let text: string;
    try {
      const file = this.fileFor(claimUid);
      if (fs.statSync(file).size > MAX_SPEC_BYTES) return [];
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    let spec: unknown;
    try {
      spec = JSON.parse(text);
    } catch {
      return [];
    }
    if (!isJsonObject(spec) || spec["kind"] !== this.kind || !Array.isArray(spec["devices"])) {
      return [];
    }
    return spec["devices"].flatMap((device: unknown) =>
      isJsonObject(device) && typeof device["name"] === "string"
        ? [qualifiedDeviceName(this.kind, device["name"])]
        : [],
    );
  }

  /** Claim UIDs that have a spec file of ours. */
  claims(): string[] {
    const prefix = `${this.kind.replace("/", "-")}_`;
    let names: string[];
    try {
      names = fs.readdirSync(this.cdiRoot);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return names
      .filter((name) => name.startsWith(prefix) && name.endsWith(".json"))
      .map((name) => name.slice(prefix.length, -".json".length))
      .filter((uid) => CLAIM_UID.test(uid));
  }
}
