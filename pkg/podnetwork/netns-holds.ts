import fs from "node:fs";

/**
 * Open file descriptors on the network namespaces of sandboxes with attached VFs. A held
 * namespace outlives its sandbox: when the runtime tears a pod down without telling us
 * (containerd forgets across its own restart which pods it announced), the VF stays in
 * the namespace instead of vanishing with it, and a later DEL through the held descriptor
 * still finds it, moves it back to the host and releases its IPAM lease.
 */
export class NetnsHolds {
  private readonly fds = new Map<string, number>();

  /** Holds the sandbox's namespace; a second hold of the same sandbox is a no-op. */
  hold(sandboxId: string, netns: string): void {
    if (this.fds.has(sandboxId) || netns === "") return;
    // The path comes from the runtime: a FIFO there must not block the event loop, and
    // only a namespace file (nsfs shows it as an empty regular file) is held.
    const fd = fs.openSync(netns, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw new Error(`${netns} is not a network namespace`);
    }
    this.fds.set(sandboxId, fd);
  }

  /** A path to the held namespace that works after the runtime removed its own. */
  pathOf(sandboxId: string): string | undefined {
    const fd = this.fds.get(sandboxId);
    return fd === undefined ? undefined : `/proc/${process.pid}/fd/${fd}`;
  }

  /** Lets the namespace go: the kernel frees it once nothing else holds it. */
  release(sandboxId: string): void {
    const fd = this.fds.get(sandboxId);
    if (fd === undefined) return;
    this.fds.delete(sandboxId);
    fs.closeSync(fd);
  }
}
