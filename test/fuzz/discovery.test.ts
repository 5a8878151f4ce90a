import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { interfaceNameRule } from "../../api/v1alpha1/formats.js";
import { deviceAttributes, MAX_ATTRIBUTE_STRING_LENGTH } from "../../pkg/devices/attributes.js";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { scanHostSysfs } from "../../pkg/host/discovery.js";
import { HostPaths } from "../../pkg/host/paths.js";
import { isPciAddress } from "../../pkg/host/pci-address.js";
import { fuzzRuns } from "./runs.js";

/** Every file and link of a host tree below sys/devices and proc (no link followed). */
function entriesOf(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else found.push(path.relative(root, full));
    }
  };
  walk(path.join(root, "sys/devices"));
  walk(path.join(root, "proc"));
  return found.sort();
}

const hostileText = fc.oneof(
  fc.constantFrom("0xdeadbeef", "-5", "1e20", "Infinity", "", "\0", "0x", "65536", "-1", "pci"),
  fc.string({ maxLength: 40 }),
  fc.integer().map(String),
);
const hostileTarget = fc.oneof(
  fc.constantFrom(
    "../0000:ff:1f.7",
    "../0000:3b:00.0",
    "../0000:3b:0a.1",
    "/dev/zero",
    "../../../bus/pci/drivers/0000:3b:02.0",
    "../../../bus/pci/drivers/ok",
    "../../../../kernel/iommu_groups/-3",
    "..",
  ),
  fc.stringMatching(/^[a-z0-9.:/_-]{1,30}$/),
);

type Damage =
  | { kind: "write"; index: number; text: string }
  | { kind: "relink"; index: number; target: string }
  | { kind: "fifo" | "directory" | "zero" | "remove"; index: number };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant("write" as const), index: fc.nat(), text: hostileText }),
  fc.record({ kind: fc.constant("relink" as const), index: fc.nat(), target: hostileTarget }),
  fc.record({
    kind: fc.constantFrom(
      "fifo" as const,
      "directory" as const,
      "zero" as const,
      "remove" as const,
    ),
    index: fc.nat(),
  }),
);

function apply(root: string, entries: readonly string[], d: Damage): void {
  const file = path.join(root, entries[d.index % entries.length]!);
  fs.rmSync(file, { recursive: true, force: true });
  switch (d.kind) {
    case "write":
      fs.writeFileSync(file, `${d.text}\n`);
      break;
    case "relink":
      fs.symlinkSync(d.target, file);
      break;
    case "fifo":
      execFileSync("mkfifo", [file]);
      break;
    case "directory":
      fs.mkdirSync(file);
      break;
    case "zero":
      fs.symlinkSync("/dev/zero", file);
      break;
    case "remove":
      break;
  }
}

/**
 * Discovery of emulated hosts corrupted at random: whatever the damage, discovery returns,
 * and what it would publish is valid (the API server would take the slices) or the device
 * is missing with a warning.
 */
describe("fuzz: discovery of corrupted hosts", () => {
  let pristine: string;
  let work: string;
  let entries: string[];
  beforeAll(async () => {
    pristine = fs.mkdtempSync(path.join(os.tmpdir(), "fuzz-host-"));
    await buildEmulatedHost({ root: pristine, profile: builtinProfiles.x710 });
    entries = entriesOf(pristine);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "fuzz-work-"));
  });
  afterAll(() => {
    fs.rmSync(pristine, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("publishes only valid devices, and never throws, hangs or reads a device node", () => {
    let warned = 0;
    fc.assert(
      fc.property(fc.array(damage, { minLength: 1, maxLength: 3 }), (damages) => {
        fs.rmSync(work, { recursive: true, force: true });
        fs.cpSync(pristine, work, { recursive: true, verbatimSymlinks: true });
        for (const d of damages) apply(work, entries, d);
        const inventory = scanHostSysfs(new HostPaths({ root: work }));
        warned += inventory.warnings.length > 0 ? 1 : 0;
        const pfAddresses = new Set(inventory.pfs.map((pf) => pf.pciAddress));
        const vfAddresses = new Set<string>();
        for (const pf of inventory.pfs) {
          for (const id of [pf.vendor, pf.deviceID, pf.vfVendor])
            expect(id).toMatch(/^[0-9a-f]{4}$/);
          expect(pf.driver).toMatch(/^([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$/);
          expect(pf.numaNode).toBeGreaterThanOrEqual(-1);
          expect(pf.numaNode).toBeLessThanOrEqual(1023);
          if (pf.netdev !== undefined) expect(interfaceNameRule.check(pf.netdev)).toBeUndefined();
          for (const vf of pf.vfs) {
            expect(isPciAddress(vf.pciAddress)).toBe(true);
            expect(pfAddresses.has(vf.pciAddress), `${vf.pciAddress} is a PF`).toBe(false);
            expect(vfAddresses.has(vf.pciAddress), `${vf.pciAddress} twice`).toBe(false);
            vfAddresses.add(vf.pciAddress);
            expect(vf.driver).toMatch(/^([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$/);
            if (vf.iommuGroup !== undefined) expect(vf.iommuGroup).toBeGreaterThanOrEqual(0);
            const attributes = deviceAttributes({ name: "d", vf, pf }, "sriovnetwork.openshift.io");
            for (const value of Object.values(attributes)) {
              if ("string" in value) {
                expect(value.string.length).toBeLessThanOrEqual(MAX_ATTRIBUTE_STRING_LENGTH);
              }
              if ("int" in value) expect(Number.isSafeInteger(value.int)).toBe(true);
            }
          }
        }
      }),
      { numRuns: fuzzRuns(60) },
    );
    // The damage is real: most runs leave a warning.
    expect(warned).toBeGreaterThan(0);
  });
});
