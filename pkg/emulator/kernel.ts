import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { isPciAddress } from "../host/pci-address.js";
import type { ChangeReply, HostChange } from "./changes.js";
import { applyHostChange, parseHostChange } from "./changes.js";
import {
  kernelSocketPath,
  lockKernel,
  readHostRecord,
  resolveHostRoot,
  unlockKernel,
} from "./host.js";
import type { DeviceSpec } from "./layout.js";
import { hostLayout } from "./layout.js";
import type { EmulatorLogger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { EmulatedMachine } from "./machine.js";
import type { ControlFile } from "./sysfs-tree.js";
import { readText } from "./sysfs-tree.js";
import { messageOf } from "../../lib/util/errors.js";

const execFileAsync = promisify(execFile);
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** A change request is one short JSON line. */
const MAX_REQUEST_BYTES = 4096;

export interface EmulatedKernelOptions {
  /** Root of a built emulated host. */
  root: string;
  /** Delay before a bind or probe starts, as with asynchronous probing; default 5 ms. */
  bindDelayMs?: number;
  /**
   * How long a driver's probe runs once a bind or probe has matched it (igbvf took 2.1 s on
   * a real 82576); default 0. Operations on the device wait for the probe, as for the
   * kernel's device lock; other devices go on.
   */
  probeDurationMs?: number;
  logger?: EmulatorLogger;
}

/**
 * Answers writes to an emulated host's sysfs as the kernel would. While it runs, each
 * driver's `bind` and `unbind` and the bus's `drivers_probe` are FIFOs: many writers may
 * write at once, and a write of one address (far below PIPE_BUF) arrives whole. Each PF's
 * `sriov_numvfs` and each device's `driver_override` stay regular files, watched. Changes
 * run one at a time in arrival order (unbinds at once, binds and probes after
 * `bindDelayMs`, then for `probeDurationMs`); refused writes are logged with the errno the
 * kernel would return and otherwise ignored.
 *
 * Limits of files that are FIFOs or regular files, where the kernel runs code in write():
 * - A write returns at once. The kernel returns a write to `bind` or `drivers_probe` only
 *   after the probe, and shows the `driver` link from the probe's start; here the link
 *   comes when the probe is over, so a writer that waits for it sees what it would see
 *   after its write returned on the kernel.
 * - A refused `sriov_numvfs` write succeeds for the writer (the kernel fails it with the
 *   errno logged here); the file is put back to the current count, which is how a writer
 *   can tell.
 * - A cleared `driver_override` ("\n") reads `(null)` once the watch has seen the write,
 *   a few milliseconds later, not at once. An empty write ("") is taken for a writer's
 *   O_TRUNC with its write still to come and shows as empty until the next bind or probe.
 *
 * Changes behind the driver's back (a PF's cable or netdev state, a VF removed or moved to
 * another driver: HostChange) come through `change()` or, from other processes
 * (`emulate --set-link` and the like, changeEmulatedHost), through a unix socket at the
 * root's `.dra-sriov-emulated-kernel.sock`: one JSON HostChange a connection, answered with
 * `{"done": "<what was done>"}` or `{"error": "<why not>"}` once the change shows in the
 * tree. They run in the same order as the writes answered here, after the device's probe.
 */
export class EmulatedKernel {
  private readonly root: string;
  private readonly bindDelayMs: number;
  private readonly probeDurationMs: number;
  private readonly logger: EmulatorLogger;
  private machine: EmulatedMachine | undefined;
  private controls: ControlFile[] = [];
  private readers: net.Socket[] = [];
  private watchers: fs.FSWatcher[] = [];
  /** driver_override watchers by device address. */
  private readonly overrideWatchers = new Map<string, fs.FSWatcher>();
  /** Devices whose probe runs, with the promise of its end. */
  private readonly probing = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Rejects the changes still waiting, when the kernel stops. */
  private readonly pendingChanges = new Set<(error: Error) => void>();
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private tail: Promise<void> = Promise.resolve();

  constructor(options: EmulatedKernelOptions) {
    this.root = resolveHostRoot(options.root);
    this.bindDelayMs = options.bindDelayMs ?? 5;
    this.probeDurationMs = options.probeDurationMs ?? 0;
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
      this.watchOverrides();
      await this.serveChanges();
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.logger.info(
      { root: this.root, bindDelayMs: this.bindDelayMs, probeDurationMs: this.probeDurationMs },
      "emulated kernel serving",
    );
  }

  /** Stops answering and turns the control FIFOs back into regular files. */
  async stop(): Promise<void> {
    if (this.machine === undefined) return;
    for (const watcher of [...this.watchers, ...this.overrideWatchers.values()]) watcher.close();
    for (const timer of this.timers) clearTimeout(timer);
    for (const reader of this.readers) reader.destroy();
    for (const reject of this.pendingChanges) {
      reject(new Error(`the emulated kernel for ${this.root} stopped before the change`));
    }
    this.pendingChanges.clear();
    if (this.server !== undefined) {
      const closed = new Promise((resolve) => this.server!.close(resolve));
      for (const connection of this.connections) connection.destroy();
      await closed;
      this.server = undefined;
      fs.rmSync(kernelSocketPath(this.root), { force: true });
    }
    this.watchers = [];
    this.overrideWatchers.clear();
    this.probing.clear();
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

  /**
   * Makes a change behind the driver's back, in order with the writes this kernel answers
   * and after the device's probe; resolves to what was done once the tree shows it.
   */
  change(change: HostChange): Promise<string> {
    const machine = this.machine;
    if (machine === undefined) {
      return Promise.reject(new Error(`the emulated kernel for ${this.root} is not running`));
    }
    return new Promise<string>((resolve, reject) => {
      this.pendingChanges.add(reject);
      const operation = async () => {
        try {
          resolve(await applyHostChange(machine, change));
          this.logger.info({ change }, "host changed behind the driver's back");
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        } finally {
          this.pendingChanges.delete(reject);
          this.watchOverrides();
        }
      };
      if (change.kind === "remove-vf" || change.kind === "rebind") {
        this.onDevice(change.vf, operation);
      } else {
        void this.enqueue(operation);
      }
    });
  }

  /** The socket other processes send changes to (see the class comment). */
  private async serveChanges(): Promise<void> {
    const socket = kernelSocketPath(this.root);
    fs.rmSync(socket, { force: true });
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
      this.logger.warn(
        { socket },
        "no socket for host changes: the path is longer than a unix socket's; use a shorter root",
      );
      return;
    }
    // Half-open: a client ends its side after its request and still reads the reply.
    const server = net.createServer({ allowHalfOpen: true }, (connection) =>
      this.onChangeRequest(connection),
    );
    server.on("error", (error) =>
      this.logger.warn({ socket, error: error.message }, "host change socket failed"),
    );
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socket, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
  }

  private onChangeRequest(connection: net.Socket): void {
    let request = "";
    this.connections.add(connection);
    connection.on("close", () => this.connections.delete(connection));
    connection.setEncoding("utf8");
    connection.on("error", () => undefined);
    const answer = (reply: ChangeReply) => connection.end(`${JSON.stringify(reply)}\n`);
    const fail = (error: unknown) => answer({ error: messageOf(error) });
    connection.on("data", (chunk: string) => {
      request += chunk;
      if (request.length > MAX_REQUEST_BYTES) {
        connection.removeAllListeners("data");
        fail(new Error(`a change request is one JSON line under ${MAX_REQUEST_BYTES} bytes`));
        return;
      }
      const newline = request.indexOf("\n");
      if (newline === -1) return;
      connection.removeAllListeners("data");
      let change: HostChange;
      try {
        change = parseHostChange(JSON.parse(request.slice(0, newline)) as unknown);
      } catch (error) {
        fail(error);
        return;
      }
      this.change(change).then((done) => answer({ done }), fail);
    });
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

  /**
   * Watches the driver_override of every present device that has no watcher yet and drops
   * the watchers of devices gone, so a cleared override reads "(null)" as on the kernel.
   */
  private watchOverrides(): void {
    const machine = this.machine!;
    for (const [address, watcher] of this.overrideWatchers) {
      if (machine.tree.isPresent(address)) continue;
      watcher.close();
      this.overrideWatchers.delete(address);
    }
    for (const device of machine.layout.byAddress.values()) {
      if (this.overrideWatchers.has(device.address) || !machine.tree.isPresent(device.address)) {
        continue;
      }
      const file = path.join(machine.tree.deviceDir(device), "driver_override");
      const watcher = fs.watch(file, () => this.machine?.tree.showClearedOverride(device.address));
      watcher.on("error", (error) =>
        this.logger.warn({ file, error: error.message }, "driver_override watch failed"),
      );
      this.overrideWatchers.set(device.address, watcher);
    }
  }

  private onControlWrite(control: ControlFile, text: string): void {
    const { addresses, invalid } = parseControlWrite(text);
    for (const write of invalid) {
      this.logger.warn({ file: control.path, write }, "ignored write: not a PCI address (EINVAL)");
    }
    for (const address of addresses) {
      if (control.action === "unbind") {
        this.onDevice(address, () => this.unbind(control.driver!, address));
      } else if (control.action === "bind") {
        this.after(this.bindDelayMs, () =>
          this.onDevice(address, () => this.bind(control.driver!, address)),
        );
      } else {
        this.after(this.bindDelayMs, () => this.onDevice(address, () => this.probe(address)));
      }
    }
  }

  /** Calls `then` after `ms`, unless the kernel stops first. */
  private after(ms: number, then: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      then();
    }, ms);
    this.timers.add(timer);
  }

  /**
   * Runs an operation on one device, after the device's probe if one runs (the kernel's
   * device lock): also when the probe started while the operation waited in the queue.
   */
  private onDevice(address: string, operation: () => Promise<void>): void {
    const probe = this.probing.get(address);
    if (probe !== undefined) {
      void probe.then(() => this.onDevice(address, operation));
      return;
    }
    void this.enqueue(async () => {
      if (this.probing.has(address)) this.onDevice(address, operation);
      else await operation();
    });
  }

  /** Runs operations one after another in arrival order; resolves when this one is done. */
  private enqueue(operation: () => Promise<void>): Promise<void> {
    this.tail = this.tail.then(operation).catch((error: unknown) => {
      const message = messageOf(error);
      this.logger.warn({ error: message }, "emulated kernel operation failed");
    });
    return this.tail;
  }

  /**
   * Binds a device whose driver matched, after `probeDurationMs`. The driver was chosen at
   * the probe's start, as the kernel matches before it probes; meanwhile the device is
   * probing and operations on it wait.
   */
  private async runProbe(device: DeviceSpec, driver: string): Promise<void> {
    const bind = async () => {
      await this.machine!.bind([{ device, driver }]);
      this.logger.debug({ address: device.address, driver }, "probed and bound");
    };
    if (this.probeDurationMs === 0) {
      await bind();
      return;
    }
    const end = new Promise<void>((resolve) =>
      this.after(this.probeDurationMs, () => {
        void this.enqueue(async () => {
          // The probe outlived its device only if VFs were removed meanwhile (sriov_numvfs 0).
          if (this.machine?.tree.isPresent(device.address)) await bind();
        }).finally(resolve);
      }),
    );
    this.probing.set(device.address, end);
    this.logger.debug(
      { address: device.address, driver, probeDurationMs: this.probeDurationMs },
      "probing",
    );
    void end.finally(() => this.probing.delete(device.address));
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
    await this.runProbe(device, driver);
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
    await this.runProbe(device, driver);
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
    this.watchOverrides();
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
