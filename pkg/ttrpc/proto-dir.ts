import fs from "node:fs";
import path from "node:path";

/** Where the .proto files live, relative to a project or bundle root. */
const PROTO_DIR = path.join("api", "proto");

/**
 * Finds `api/proto` holding `markerFile` in `startDir` or the nearest parent that has it:
 * the source tree (pkg/x → repository root), the compiled tree (tsc does not copy .proto
 * files, so dist/api/proto has none and the search goes on to the repository root) and
 * the container bundle (api/proto shipped beside the bundle file).
 */
export function findProtoDir(startDir: string, markerFile: string): string {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, PROTO_DIR);
    if (fs.existsSync(path.join(candidate, markerFile))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    `cannot find the protocol definitions (${path.join(PROTO_DIR, markerFile)}) in ${startDir} or any parent directory: ` +
      "ship api/proto/ next to the program or pass its location explicitly",
  );
}

/** Throws, naming the file, when one of `files` (relative to `dir`) is missing. */
export function requireProtoFiles(dir: string, files: readonly string[]): string[] {
  const paths = files.map((file) => path.join(dir, file));
  for (const file of paths) {
    if (!fs.existsSync(file)) {
      throw new Error(
        `protocol definition ${file} is missing: ship all of api/proto/ with the program`,
      );
    }
  }
  return paths;
}
