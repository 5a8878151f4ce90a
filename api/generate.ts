import fs from "node:fs";
import path from "node:path";
import { renderVfConfigAdmissionPolicy, VF_CONFIG_POLICY_PATH } from "./admission.js";
import { CRD_NAMES, crdPath, renderCrd } from "./crd.js";
import { REFERENCE_PATH, renderReference } from "./reference.js";

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  contents: string;
}

/** Every file generated from the API schemas, as it must be checked in. */
export function generatedFiles(): GeneratedFile[] {
  return [
    ...CRD_NAMES.flatMap((name) => [
      { path: crdPath(name), contents: renderCrd(name) },
      // Helm installs CRDs only from the chart's own crds/ folder: the same file, twice.
      {
        path: `deployments/helm/dra-driver-sriov/crds/${path.basename(crdPath(name))}`,
        contents: renderCrd(name),
      },
    ]),
    { path: REFERENCE_PATH, contents: renderReference() },
    { path: VF_CONFIG_POLICY_PATH, contents: renderVfConfigAdmissionPolicy() },
  ];
}

/** Paths (relative to `root`) whose contents differ from what the generator produces. */
export function staleFiles(root: string): string[] {
  return generatedFiles()
    .filter((file) => readOrUndefined(path.join(root, file.path)) !== file.contents)
    .map((file) => file.path);
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * `node dist/api/generate.js --write` from the repository root (after `tsc`) rewrites the
 * generated files; `--check` exits 1 naming the stale ones.
 */
function main(args: readonly string[]): number {
  const root = process.cwd();
  if (!fs.existsSync(path.join(root, "api"))) {
    console.error(`${root} has no api/ directory: run this from the repository root`);
    return 1;
  }
  if (args[0] === "--write") {
    for (const file of generatedFiles()) {
      fs.mkdirSync(path.dirname(path.join(root, file.path)), { recursive: true });
      fs.writeFileSync(path.join(root, file.path), file.contents);
      console.log(`wrote ${file.path}`);
    }
    return 0;
  }
  if (args[0] === "--check") {
    const stale = staleFiles(root);
    for (const file of stale) {
      console.error(`${file} is out of date: run node dist/api/generate.js --write`);
    }
    return stale.length === 0 ? 0 : 1;
  }
  console.error("usage: node dist/api/generate.js --write | --check");
  return 2;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
