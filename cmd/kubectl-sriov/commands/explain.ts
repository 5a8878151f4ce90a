import fs from "node:fs";
import { parseAllDocuments } from "yaml";
import { holdersByDevice, member } from "../../../pkg/cluster-inventory/claims.js";
import {
  EXPLANATION_API_VERSION,
  explainClaim,
  type ClaimExplanation,
} from "../../../pkg/claim-explain/explain.js";
import { formatExplanation } from "../../../pkg/claim-explain/format.js";
import { devicesByNode, readClaimSpec, readSelectors } from "../../../pkg/claim-explain/input.js";
import { KubeApiError, type KubeClient, type KubeObject } from "../../../lib/kube/client.js";
import type { PluginOptions } from "../cli.js";
import { listAll } from "../list.js";
import { render } from "../output.js";
import {
  deviceClassesPath,
  resourceClaimsPath,
  resourceClaimTemplatesPath,
  podsPath,
  resourceSlicesPath,
} from "../../../lib/kube/api-paths.js";

/** A manifest larger than this is not a claim. */
const MAX_FILE = 1024 * 1024;

export interface ClaimExplanationList {
  apiVersion: typeof EXPLANATION_API_VERSION;
  kind: "ClaimExplanationList";
  items: ClaimExplanation[];
}

/** A claim to explain: its name and kind as shown, and its `spec` (with `devices`). */
interface Subject {
  kind: string;
  namespace: string | null;
  name: string;
  spec: unknown;
}

/** `kubectl sriov explain (pod NAME | claim NAME | -f FILE)`. */
export async function runExplain(
  client: KubeClient,
  options: PluginOptions,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const namespace = options.namespace ?? client.namespace;
  const [what, name] = options.args;
  let subjects: Subject[];
  if (options.filename !== undefined) {
    if (what !== undefined) {
      err.write("error: give either -f FILE or pod/claim NAME, not both\n");
      return 2;
    }
    subjects = subjectsFromFile(options.filename, namespace);
  } else if ((what === "pod" || what === "claim") && name !== undefined) {
    subjects =
      what === "pod"
        ? await subjectsOfPod(client, namespace, name)
        : [await claimSubject(client, namespace, name)];
  } else {
    err.write("error: usage is kubectl sriov explain (pod NAME | claim NAME | -f FILE)\n");
    return 2;
  }
  if (subjects.length === 0) {
    err.write("error: nothing to explain: no ResourceClaim or ResourceClaimTemplate found\n");
    return 1;
  }

  const [classes, slices, claims] = await Promise.all([
    listAll(client, deviceClassesPath()),
    listAll(client, resourceSlicesPath(), { fieldSelector: `spec.driver=${options.driverName}` }),
    listAll(client, resourceClaimsPath()).catch((error: unknown) => {
      if (!(error instanceof KubeApiError && error.status === 403)) throw error;
      err.write(
        `warning: cannot list resourceclaims (${error.message}): devices in use not known\n`,
      );
      return [];
    }),
  ]);
  const classSelectors = new Map<string, string[]>();
  for (const deviceClass of classes) {
    const className = member(member(deviceClass, "metadata"), "name");
    const selectors = readSelectors(member(member(deviceClass, "spec"), "selectors"), "");
    if (typeof className === "string" && typeof selectors !== "string") {
      classSelectors.set(className, selectors);
    }
  }
  const devices = devicesByNode(slices as KubeObject[], options.driverName);
  const holders = holdersByDevice(claims, options.driverName);

  const items: ClaimExplanation[] = [];
  for (const subject of subjects) {
    const spec = readClaimSpec(subject.spec);
    if (typeof spec === "string") {
      err.write(`error: ${subject.kind} ${subject.name}: ${spec}\n`);
      return 1;
    }
    items.push(
      explainClaim({
        driver: options.driverName,
        claim: { kind: subject.kind, namespace: subject.namespace, name: subject.name },
        spec,
        classes: classSelectors,
        devices,
        holders,
        ...(subject.kind === "ResourceClaim" && subject.namespace !== null && !options.filename
          ? { self: { namespace: subject.namespace, name: subject.name } }
          : {}),
      }),
    );
  }
  const list: ClaimExplanationList = {
    apiVersion: EXPLANATION_API_VERSION,
    kind: "ClaimExplanationList",
    items,
  };
  out.write(
    render(list, options.output, (value) => value.items.map(formatExplanation).join("\n\n")),
  );
  return 0;
}

async function claimSubject(client: KubeClient, namespace: string, name: string): Promise<Subject> {
  const claim = await client.request<unknown>({
    method: "GET",
    path: resourceClaimsPath(namespace, name),
  });
  return { kind: "ResourceClaim", namespace, name, spec: member(claim, "spec") };
}

/**
 * The claims of a pod: each `spec.resourceClaims` entry, the claim it names, or the one
 * generated from its template (`status.resourceClaimStatuses`), else the template itself.
 */
async function subjectsOfPod(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<Subject[]> {
  const pod = await client.request<unknown>({
    method: "GET",
    path: podsPath(namespace, name),
  });
  const entries = member(member(pod, "spec"), "resourceClaims");
  const statuses = member(member(pod, "status"), "resourceClaimStatuses");
  const subjects: Subject[] = [];
  for (const entry of Array.isArray(entries) ? entries.slice(0, 32) : []) {
    const claimName = member(entry, "resourceClaimName");
    const templateName = member(entry, "resourceClaimTemplateName");
    const generated = (Array.isArray(statuses) ? statuses : []).find(
      (status) => member(status, "name") === member(entry, "name"),
    );
    const generatedName = member(generated, "resourceClaimName");
    if (typeof claimName === "string") {
      subjects.push(await claimSubject(client, namespace, claimName));
    } else if (typeof generatedName === "string") {
      subjects.push(await claimSubject(client, namespace, generatedName));
    } else if (typeof templateName === "string") {
      const template = await client.request<unknown>({
        method: "GET",
        path: resourceClaimTemplatesPath(namespace, templateName),
      });
      subjects.push({
        kind: "ResourceClaimTemplate",
        namespace,
        name: templateName,
        spec: member(member(template, "spec"), "spec"),
      });
    }
  }
  return subjects;
}

/** The ResourceClaims and ResourceClaimTemplates of a YAML or JSON file, before they are applied. */
function subjectsFromFile(file: string, namespace: string): Subject[] {
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw new Error(`${file}: not a regular file`);
  if (stat.size > MAX_FILE) throw new Error(`${file}: larger than ${MAX_FILE} bytes`);
  const subjects: Subject[] = [];
  for (const document of parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (document.errors.length > 0) {
      throw new Error(`${file}: not YAML: ${document.errors[0]!.message}`);
    }
    const object: unknown = document.toJSON();
    const kind = member(object, "kind");
    const metadata = member(object, "metadata");
    const name =
      typeof member(metadata, "name") === "string" ? String(member(metadata, "name")) : "(unnamed)";
    const objectNamespace = member(metadata, "namespace");
    const ns = typeof objectNamespace === "string" ? objectNamespace : namespace;
    if (kind === "ResourceClaim") {
      subjects.push({ kind, namespace: ns, name, spec: member(object, "spec") });
    } else if (kind === "ResourceClaimTemplate") {
      subjects.push({ kind, namespace: ns, name, spec: member(member(object, "spec"), "spec") });
    }
  }
  return subjects;
}
