import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * Device nodes of the emulated `/dev`: `/dev/vfio/vfio`, `/dev/vfio/<group>`, `/dev/net/tun`,
 * `/dev/vhost-net`. As root they are character devices carrying /dev/null's numbers (1:3):
 * container runtimes copy a CDI device node's major:minor from its host path, so real VFIO
 * or tun numbers would hand a test container the real device. Without root (no mknod) they
 * are regular files, which is enough for code that only checks they exist.
 */
export class DeviceNodes {
  private readonly dev: string;

  constructor(root: string) {
    this.dev = path.join(root, "dev");
  }

  vfioGroup(group: number): string {
    return path.join(this.dev, "vfio", String(group));
  }

  async createFixed(): Promise<void> {
    await this.create(
      ["vfio/vfio", "net/tun", "vhost-net"].map((name) => path.join(this.dev, name)),
    );
  }

  async create(files: readonly string[]): Promise<void> {
    for (const dir of new Set(files.map((file) => path.dirname(file)))) {
      fs.mkdirSync(dir, { recursive: true });
    }
    await Promise.all(
      files.map(async (file) => {
        fs.rmSync(file, { force: true });
        if (process.getuid?.() === 0) {
          await execFileAsync("mknod", ["-m", "0666", file, "c", "1", "3"]);
        } else {
          fs.writeFileSync(file, "");
        }
      }),
    );
  }

  remove(files: readonly string[]): void {
    for (const file of files) fs.rmSync(file, { force: true });
  }
}
