import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { sriovResourceFilterCrd } from "./crd.js";
import { generatedFiles, staleFiles } from "./generate.js";
import { structuralViolations } from "./schema/index.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const REGENERATE = "tsc -p tsconfig.build.json && node dist/api/generate.js --write";

describe("generated files", () => {
  it.each(generatedFiles().map((file) => [file.path, file.contents]))(
    "%s is checked in as generated",
    (file, contents) => {
      const checkedIn = fs.readFileSync(`${REPO_ROOT}/${file}`, "utf8");
      expect(checkedIn, `${file} is stale: run ${REGENERATE}`).toBe(contents);
    },
  );

  it("reports no stale files in this checkout", () => {
    expect(staleFiles(REPO_ROOT)).toEqual([]);
  });

  it("names a file that differs", () => {
    const root = fs.mkdtempSync(`${os.tmpdir()}/generate-`);
    try {
      for (const file of generatedFiles()) {
        fs.mkdirSync(path.dirname(`${root}/${file.path}`), { recursive: true });
        fs.writeFileSync(`${root}/${file.path}`, file.contents);
      }
      const [first] = generatedFiles();
      fs.appendFileSync(`${root}/${first!.path}`, "# edited by hand\n");
      expect(staleFiles(root)).toEqual([first!.path]);
    } finally {
      fs.rmSync(root, { recursive: true });
    }
  });

  // Helm templates are not YAML until rendered; Prettier leaves them alone (.prettierignore).
  it.each(
    generatedFiles()
      .filter((file) => !file.path.includes("/templates/"))
      .map((file) => [file.path, file.contents]),
  )("%s is formatted as Prettier formats it", async (file, contents) => {
    const parser = file.endsWith(".md") ? "markdown" : "yaml";
    expect(await format(contents, { parser, printWidth: 100 })).toBe(contents);
  });
});

describe("SriovResourceFilter CRD", () => {
  const crd = sriovResourceFilterCrd();
  const version = crd.spec.versions[0]!;
  const schema = version.schema.openAPIV3Schema;

  it("is a namespaced v1alpha1 resource with a status subresource", () => {
    expect(crd.metadata.name).toBe("sriovresourcefilters.sriovnetwork.openshift.io");
    expect(crd.spec.scope).toBe("Namespaced");
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: "v1alpha1", served: true, storage: true });
    expect(version.subresources).toEqual({ status: {} });
    expect(version.additionalPrinterColumns.map((c) => c.name)).toContain("Accepted");
  });

  it("has a structural schema: a type everywhere, no $ref, no properties with additionalProperties", () => {
    expect(structuralViolations(schema)).toEqual([]);
    expect(schema.properties?.metadata).toEqual({ type: "object" });
  });

  it("bounds every list and every string a CEL rule reads, so the API server can cost the rules", () => {
    const configs = schema.properties?.spec?.properties?.configs;
    expect(configs?.["x-kubernetes-validations"]).toHaveLength(1);
    expect(configs?.maxItems).toBeDefined();
    expect(configs?.items?.properties?.resourceName?.maxLength).toBeDefined();
  });

  it("round-trips through the checked-in YAML", () => {
    const file = generatedFiles().find((f) => f.path.endsWith(".yaml"))!;
    expect(parse(file.contents)).toEqual(crd);
  });
});
