import { execFile } from "node:child_process";
import { createHash } from "node:crypto";

/** Every link the emulator creates carries the alias `dra-sriov-emulator:<root>`. */
export const LINK_ALIAS_PREFIX = "dra-sriov-emulator:";

export interface VethSpec {
  /** The VF netdev name, e.g. ens1f0v3. */
  ifname: string;
  mac: string;
}

export interface HostAddress {
  ifname: string;
  /** e.g. 198.18.1.1/24 */
  ipv4Cidr: string;
  /** e.g. 2001:2:0:1::1/64 */
  ipv6Cidr: string;
}

/**
 * Real veth pairs standing in for VF netdevs (`--netdevs`), so a CNI plugin can move "the VF"
 * into a pod's network namespace. The VF end has the VF's name and MAC; the peer stays in the
 * host namespace under a name derived from root and VF name, so the pair can be found and
 * deleted even after the VF end has moved. Only links carrying this root's alias are ever
 * touched; a name clash with any other link is an error.
 */
export class VethPairs {
  readonly alias: string;

  constructor(private readonly root: string) {
    this.alias = `${LINK_ALIAS_PREFIX}${root}`;
  }

  /** `emu` + 10 hex digits: 13 bytes, within IFNAMSIZ, unique per root and VF name. */
  peerName(ifname: string): string {
    const digest = createHash("sha256").update(`${this.root}\0${ifname}`).digest("hex");
    return `emu${digest.slice(0, 10)}`;
  }

  async create(veths: readonly VethSpec[]): Promise<void> {
    if (veths.length === 0) return;
    const links = await listLinks();
    const stale: string[] = [];
    for (const name of veths.flatMap((veth) => [veth.ifname, this.peerName(veth.ifname)])) {
      if (!links.has(name)) continue;
      const alias = links.get(name);
      if (alias !== this.alias) {
        throw new Error(
          `network interface ${name} already exists and was not made by the emulator for ${this.root} ` +
            `(alias ${JSON.stringify(alias ?? "")}): delete it or use a profile with other netdev names`,
        );
      }
      stale.push(name);
    }
    // Left over from an earlier run on this root; deleting one end takes the other along.
    await runIpBatch(
      stale.map((name) => `link delete dev ${name}`),
      true,
    );
    await runIpBatch(
      veths.flatMap((veth) => {
        const peer = this.peerName(veth.ifname);
        return [
          `link add name ${veth.ifname} address ${veth.mac} type veth peer name ${peer}`,
          `link set dev ${veth.ifname} alias "${this.alias}"`,
          `link set dev ${peer} alias "${this.alias}"`,
        ];
      }),
      false,
    );
  }

  /** Deletes the pairs of these VF netdevs, through the peer, wherever the VF end is now. */
  async remove(ifnames: readonly string[]): Promise<void> {
    if (ifnames.length === 0) return;
    const links = await listLinks();
    const ours = ifnames
      .flatMap((ifname) => [this.peerName(ifname), ifname])
      .filter((name) => links.get(name) === this.alias);
    await runIpBatch(
      ours.map((name) => `link delete dev ${name}`),
      true,
    );
  }

  /** Gives VF ends addresses (and so routes) in the host namespace; both ends go up. */
  async addHostAddresses(addresses: readonly HostAddress[]): Promise<void> {
    await runIpBatch(
      addresses.flatMap((address) => [
        `address add ${address.ipv4Cidr} dev ${address.ifname}`,
        `address add ${address.ipv6Cidr} dev ${address.ifname} nodad`,
        `link set dev ${this.peerName(address.ifname)} up`,
        `link set dev ${address.ifname} up`,
      ]),
      false,
    );
  }

  /** Deletes every link with this root's alias; returns those still there afterwards. */
  async removeAll(): Promise<string[]> {
    const ours = async () =>
      [...(await listLinks())].filter(([, alias]) => alias === this.alias).map(([name]) => name);
    await runIpBatch(
      (await ours()).map((name) => `link delete dev ${name}`),
      true,
    );
    return ours();
  }
}

/** Links of the host network namespace: name → alias (undefined without one). */
async function listLinks(): Promise<Map<string, string | undefined>> {
  const output = await runIp(["-j", "link", "show"], "");
  const links = JSON.parse(output) as unknown;
  if (!Array.isArray(links)) throw new Error(`"ip -j link show" printed no list: ${output}`);
  const result = new Map<string, string | undefined>();
  for (const link of links as unknown[]) {
    if (typeof link !== "object" || link === null) continue;
    const { ifname, ifalias } = link as { ifname?: unknown; ifalias?: unknown };
    if (typeof ifname === "string") {
      result.set(ifname, typeof ifalias === "string" ? ifalias : undefined);
    }
  }
  return result;
}

/**
 * One `ip -batch` run for many commands. `ignoreErrors` is for deletions of links that may
 * already be gone (`-force` carries on past failures).
 */
async function runIpBatch(commands: readonly string[], ignoreErrors: boolean): Promise<void> {
  if (commands.length === 0) return;
  const args = ignoreErrors ? ["-force", "-batch", "-"] : ["-batch", "-"];
  try {
    await runIp(args, commands.join("\n") + "\n");
  } catch (error) {
    if (!ignoreErrors) throw error;
  }
}

function runIp(args: readonly string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("ip", args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(
          new Error(
            `ip ${args.join(" ")} failed (needs root and iproute2): ${stderr.trim() || error.message}`,
          ),
        );
      } else {
        resolve(stdout);
      }
    });
    // ip may exit before reading all of stdin (a failing batch); its exit status tells.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input);
  });
}
