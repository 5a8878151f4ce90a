import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { promisify } from "node:util";
import { isPciAddress } from "../host/pci-address.js";
import { lockKernel, readHostRecord, resolveHostRoot, unlockKernel } from "./host.js";
import type { DeviceSpec } from "./layout.js";
import { hostLayout } from "./layout.js";
import type { EmulatorLogger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { EmulatedMachine } from "./machine.js";
import type { ControlFile } from "./sysfs-tree.js";
import { readText } from "./sysfs-tree.js";

const execFileAsync = promisify(execFile);

export interface EmulatedKernelOptions {
  /** Root of a built emulated host. */
  root: string;
  /** Delay before a bind or probe takes effect, as with asynchronous probing; default 5 ms. */
  bindDelayMs?: number;
  logger?: EmulatorLogger;
}

/**
 * Answers writes to an emulated host's sysfs as the kernel would. While it runs, each
 * driver's `bind` and `unbind` and the bus's `drivers_probe` are FIFOs: many writers may
 * write at once, and a write of one address (far below PIPE_BUF) arrives whole. Each PF's
 * `sriov_numvfs` stays a regular file, watched. Changes run one at a time in arrival order
 * (unbinds at once, binds and probes after `bindDelayMs`); refused writes are logged with
 * the errno the kernel would return and otherwise ignored.
 */
export class EmulatedKernel {
  private readonly root: string;
  private readonly bindDelayMs: number;
  private readonly logger: EmulatorLogger;
  private machine: EmulatedMachine | undefined;
  private controls: ControlFile[] = [];
  private readers: net.Socket[] = [];
  private watchers: fs.FSWatcher[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private tail: Promise<void> = Promise.resolve();

  constructor(options: EmulatedKernelOptions) {
    this.root = resolveHostRoot(options.root);
    this.bindDelayMs = options.bindDelayMs ?? 5;
    this.logger = options.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    if (this.machine !== undefined)
      throw new Error(`the emulated kernel for ${this.root} already runs`);
    const { profile, netdevs } = readHostRecord(this.root);
    lockKernel(this.root);
    const layout = hostLayout(profile);
    const machine = new EmulatedMachine(this.root, layout, netdevs);
    this.machine = machine;
    try {
      this.controls = machine.tree.controlFiles(layout.drivers);
      await makeFifos(this.controls.map((control) => control.path));
      for (const control of this.controls) this.readers.push(this.listen(control));
      for (const pf of layout.fixedDevices.filter((device) => device.role === "pf")) {
        const watcher = fs.watch(machine.tree.numVfsFile(pf), () =>
          this.enqueue(() => this.applyNumVfs(pf)),
        );
        watcher.on("error", (error) =>
          this.logger.warn({ pf: pf.address, error: error.message }, "sriov_numvfs watch failed"),
        );
        this.watchers.push(watcher);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.logger.info({ root: this.root, bindDelayMs: this.bindDelayMs }, "emulated kernel serving");
  }

  /** Stops answering and turns the control FIFOs back into regular files. */
  async stop(): Promise<void> {
    if (this.machine === undefined) return;
    for (const watcher of this.watchers) watcher.close();
    for (const timer of this.timers) clearTimeout(timer);
    for (const reader of this.readers) reader.destroy();
    this.watchers = [];
    this.timers.clear();
    this.readers = [];
    await this.tail;
    for (const control of this.controls) {
      fs.rmSync(control.path, { force: true });
      fs.writeFileSync(control.path, "");
    }
    this.controls = [];
    this.machine = undefined;
    unlockKernel(this.root);
    this.logger.info({ root: this.root }, "emulated kernel stopped");
  }

  /** Reads a FIFO through a read-write descriptor: we are always a writer, so no EOF. */
  private listen(control: ControlFile): net.Socket {
    const fd = fs.openSync(control.path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const reader = new net.Socket({ fd, readable: true, writable: false });
    reader.on("data", (chunk: Buffer) => this.onControlWrite(control, chunk.toString("utf8")));
    reader.on("error", (error) =>
      this.logger.warn({ file: control.path, error: error.message }, "control file read failed"),
    );
    return reader;
  }

  private onControlWrite(control: ControlFile, text: string): void {
    const { addresses, invalid } = parseControlWrite(text);
    for (const write of invalid) {
      this.logger.warn({ file: control.path, write }, "ignored write: not a PCI address (EINVAL)");
    }
    for (const address of addresses) {
      if (control.action === "unbind") {
        this.enqueue(() => this.unbind(control.driver!, address));
      } else if (control.action === "bind") {
        this.afterBindDelay(() => this.bind(control.driver!, address));
      } else {
        this.afterBindDelay(() => this.probe(address));
      }
    }
  }

  private afterBindDelay(operation: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue(operation);
    }, this.bindDelayMs);
    this.timers.add(timer);
  }

  /** Runs operations one after another, like the device lock serializes them in the kernel. */
  private enqueue(operation: () => Promise<void>): void {
    this.tail = this.tail.then(operation).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ error: message }, "emulated kernel operation failed");
    });
  }

  private device(address: string, file: string): DeviceSpec | undefined {
    const device = this.machine?.layout.byAddress.get(address);
    if (device === undefined || !this.machine!.tree.isPresent(address)) {
      this.logger.warn({ file, address }, "ignored write: no such device (ENODEV)");
      return undefined;
    }
    return device;
  }

  private async unbind(driver: string, address: string): Promise<void> {
    const device = this.device(address, `${driver}/unbind`);
    if (device === undefined) return;
    const machine = this.machine!;
    const current = machine.tree.driverOf(address);
    if (current !== driver) {
      this.logger.warn(
        { address, driver, boundTo: current ?? null },
        "ignored unbind: device is not bound to this driver (ENODEV)",
      );
      return;
    }
    await machine.unbind([device]);
    this.logger.debug({ address, driver }, "unbound");
  }

  private async bind(driver: string, address: string): Promise<void> {
    const device = this.device(address, `${driver}/bind`);
    if (device === undefined) return;
    const machine = this.machine!;
    const current = machine.tree.driverOf(address);
    if (current !== undefined) {
      this.logger.warn(
        { address, driver, boundTo: current },
        "ignored bind: already bound (EBUSY)",
      );
      return;
    }
    // As driver_match_device: an override admits only the driver it names.
    const override = machine.tree.driverOverride(address);
    if (override !== undefined ? override !== driver : driver !== device.nativeDriver) {
      this.logger.warn(
        { address, driver, driverOverride: override ?? null, nativeDriver: device.nativeDriver },
        "ignored bind: driver does not match the device (ENODEV); set driver_override first",
      );
      return;
    }
    await machine.bind([{ device, driver }]);
    this.logger.debug({ address, driver }, "bound");
  }

  private async probe(address: string): Promise<void> {
    const device = this.device(address, "drivers_probe");
    if (device === undefined) return;
    const machine = this.machine!;
    if (machine.tree.driverOf(address) !== undefined) return;
    const driver = machine.tree.driverOverride(address) ?? device.nativeDriver;
    if (driver === undefined || !machine.layout.drivers.includes(driver)) {
      this.logger.warn({ address, driver }, "probe found no such driver: device stays unbound");
      return;
    }
    await machine.bind([{ device, driver }]);
    this.logger.debug({ address, driver }, "probed and bound");
  }

  private async applyNumVfs(pf: DeviceSpec): Promise<void> {
    const machine = this.machine;
    if (machine === undefined) return;
    const written = readText(machine.tree.numVfsFile(pf))?.trim() ?? "";
    // Empty: a writer has truncated the file and its write is still to come.
    if (written === "") return;
    const current = machine.tree.vfCount(pf);
    const refusal = numVfsRefusal(written, {
      current,
      totalVfs: pf.sriov!.totalVfs,
      pfBound: machine.tree.driverOf(pf.address) !== undefined,
    });
    if (refusal !== undefined) {
      this.logger.warn(
        { pf: pf.address, written, current },
        `sriov_numvfs write refused: ${refusal}`,
      );
      machine.writeNumVfs(pf, current);
      return;
    }
    const requested = Number(written);
    // At once, in the tick that read it: a later write by someone else must not be undone.
    machine.writeNumVfs(pf, requested);
    if (requested === current) return;
    if (requested === 0) {
      await machine.removeVfs(pf);
    } else {
      const autoprobe = machine.tree.autoprobesVfs(pf);
      await machine.addVfs(pf, requested, (vf) => (autoprobe ? vf.nativeDriver : undefined));
    }
    this.logger.info({ pf: pf.address, from: current, to: requested }, "sriov_numvfs changed");
  }
}

/**
 * Why the kernel would refuse writing `written` to sriov_numvfs, or undefined if it takes it:
 * VFs can only be created from 0 and removed to 0 (sriov_numvfs_store).
 */
export function numVfsRefusal(
  written: string,
  state: { current: number; totalVfs: number; pfBound: boolean },
): string | undefined {
  if (!/^\d+$/.test(written)) return `"${written}" is not a number (EINVAL)`;
  const requested = Number(written);
  if (requested === state.current) return undefined;
  if (requested > state.totalVfs)
    return `${requested} is above sriov_totalvfs ${state.totalVfs} (ERANGE)`;
  if (!state.pfBound) return "the PF has no driver (ENOENT)";
  if (state.current > 0 && requested > 0) {
    return `${state.current} VFs exist; write 0 before setting another count (EBUSY)`;
  }
  return undefined;
}

const PCI_ADDRESS_LENGTH = "0000:3b:02.0".length;

/**
 * The PCI addresses in what a read of a control FIFO returned. Each write(2) arrives whole,
 * but writes without a newline may come back-to-back in one read, so a word that is several
 * addresses run together counts as each of them. Anything else is invalid.
 */
export function parseControlWrite(text: string): { addresses: string[]; invalid: string[] } {
  const addresses: string[] = [];
  const invalid: string[] = [];
  for (const word of text.split(/\s+/).filter((part) => part !== "")) {
    const pieces =
      word.length % PCI_ADDRESS_LENGTH === 0
        ? (word.match(new RegExp(`.{${PCI_ADDRESS_LENGTH}}`, "g")) ?? [])
        : [word];
    if (pieces.every(isPciAddress)) addresses.push(...pieces);
    else invalid.push(word);
  }
  return { addresses, invalid };
}

/** Replaces regular files by FIFOs (FIFOs left by a killed kernel are kept). */
async function makeFifos(files: readonly string[]): Promise<void> {
  const regular = files.filter((file) => !fs.statSync(file).isFIFO());
  for (const file of regular) fs.rmSync(file);
  if (regular.length > 0) await execFileAsync("mkfifo", [...regular]);
}
