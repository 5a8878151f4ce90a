import { decode, SchemaError } from "../../api/schema/index.js";
import { sriovResourceFilterStatusSchema } from "../../api/v1alpha1/sriov-resource-filter.js";
import type { PublishedDevices } from "../controller/slice-devices.js";
import type { Device } from "../devices/model.js";
import { alignColumns, treeRows } from "../devices/inventory-table.js";
import { formatFilterRef, nodeSelectorMatches } from "../filters/apply.js";
import { filterObjectOf } from "../filters/decode.js";
import { compileConfig } from "../filters/match.js";
import { validateFilterSpec } from "../filters/validate.js";
import { terminalSafe } from "./text.js";

/**
 * `kubectl sriov filters -o json|yaml`: the documented, stable structure (README, "kubectl
 * sriov"). `status` is what the controller wrote; `published` what the nodes' slices say.
 */
export interface FilterReportList {
  apiVersion: "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1";
  kind: "FilterReport";
  driver: string;
  filters: FilterReport[];
}

export interface FilterReport {
  namespace: string;
  name: string;
  generation: number | null;
  nodeSelector: Record<string, string>;
  /** The configs' resourceNames, in precedence order. */
  resourceNames: string[];
  /** Why the spec cannot be read or is invalid (then the filter takes no VFs). */
  specProblems: string[];
  /** As the controller wrote it; null when it wrote none (or it does not decode: statusProblem). */
  status: {
    conditions: {
      type: string;
      status: string;
      reason: string;
      message: string;
      observedGeneration: number | null;
    }[];
    matchedNodes: number | null;
    devicesExposed: ExposedCount[];
  } | null;
  statusProblem: string | null;
  /** From the nodes and their published slices, computed here. */
  published: { matchedNodes: number; devicesExposed: ExposedCount[] };
  /**
   * The nodes the nodeSelector selects, each with the VFs (`devices`) and whole PFs
   * (`wholePfs`, `--publish-pfs`) it publishes for this filter.
   */
  nodes: {
    name: string;
    vfs: { resourceName: string; devices: string[]; wholePfs: string[] }[];
  }[];
}

/** VFs (`count`) and whole PFs (`wholePfs`, absent when none) under one resourceName. */
export interface ExposedCount {
  resourceName: string;
  count: number;
  wholePfs?: number;
}

/** Device names listed per node and resourceName in the table; `wide` lists all. */
const LISTED_DEVICES = 6;

/**
 * Each filter beside what the cluster shows of it: the nodes its nodeSelector selects
 * (from the nodes' labels) and, on each, the published VFs that carry one of its
 * resourceNames and that config matches (so another filter's VFs of the same name are not
 * counted). A filter whose spec does not read or is invalid takes no VFs, as on the nodes.
 * Filters by precedence (namespace, then name), nodes by name.
 */
export function buildFilterReports(
  filters: readonly unknown[],
  nodes: readonly unknown[],
  published: PublishedDevices,
  driver: string,
): FilterReportList {
  const reports = filters.map((object): FilterReport => {
    const filter = filterObjectOf(object, "");
    const { namespace, name, generation } = filter.metadata;
    const specProblems = (filter.undecodable ?? validateFilterSpec(filter.spec)).map(
      ({ path, message }) => (path === "" ? message : `${path}: ${message}`),
    );
    const configs = specProblems.length > 0 ? [] : filter.spec.configs;
    const predicates = configs.map(
      (config) => [config.resourceName, compileConfig(config)] as const,
    );
    const selected = nodes
      .map(nodeLabels)
      .filter(
        (node) => node.name !== "" && nodeSelectorMatches(filter.spec.nodeSelector, node.labels),
      )
      .sort((a, b) => compare(a.name, b.name))
      .map((node) => {
        const taken = (
          devices: readonly Device[],
          resourceName: string,
          matches: (device: Device) => boolean,
        ) =>
          devices
            .filter((device) => device.resourceName === resourceName && matches(device))
            .map((device) => device.name)
            .sort(compare);
        return {
          name: node.name,
          vfs: predicates.map(([resourceName, matches]) => ({
            resourceName,
            devices: taken(published.byNode.get(node.name) ?? [], resourceName, matches),
            wholePfs: taken(published.pfsByNode.get(node.name) ?? [], resourceName, matches),
          })),
        };
      });
    const { status, problem } = readStatus(object);
    return {
      namespace,
      name,
      generation: generation ?? null,
      nodeSelector: filter.spec.nodeSelector ?? {},
      resourceNames: filter.spec.configs.map((config) => config.resourceName),
      specProblems,
      status,
      statusProblem: problem,
      published: {
        matchedNodes: selected.length,
        devicesExposed: configs.map(({ resourceName }): ExposedCount => {
          const total = (of: (entry: FilterReport["nodes"][number]["vfs"][number]) => string[]) =>
            selected.reduce((sum, node) => {
              const entry = node.vfs.find((vf) => vf.resourceName === resourceName);
              return sum + (entry === undefined ? 0 : of(entry).length);
            }, 0);
          const wholePfs = total((entry) => entry.wholePfs);
          return {
            resourceName,
            count: total((entry) => entry.devices),
            ...(wholePfs > 0 ? { wholePfs } : {}),
          };
        }),
      },
      nodes: selected,
    };
  });
  return {
    apiVersion: "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1",
    kind: "FilterReport",
    driver,
    filters: reports.sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name)),
  };
}

/**
 * Per filter: its conditions as the controller wrote them, then a STATUS | PUBLISHED table
 * (matched nodes, VFs per resourceName) side by side, then each selected node with the VFs
 * it publishes for the filter.
 */
export function formatFilterTable(list: FilterReportList, wide: boolean): string {
  const lines: string[] = [];
  for (const filter of list.filters) {
    const selector = Object.entries(filter.nodeSelector)
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
    lines.push(
      `FILTER ${formatFilterRef({ namespace: filter.namespace, name: filter.name })}  nodeSelector ${selector || "(every node)"}` +
        `  configs ${filter.resourceNames.join(", ") || "-"}`,
    );
    for (const problem of filter.specProblems) lines.push(`  spec: ${problem}`);
    if (filter.status === null) {
      lines.push(
        `  status: ${filter.statusProblem ?? "none written yet (is the controller running?)"}`,
      );
    } else {
      lines.push(
        ...alignColumns(
          filter.status.conditions.map((condition) => [
            condition.type,
            condition.status,
            condition.reason,
            (condition.observedGeneration !== null &&
            filter.generation !== null &&
            condition.observedGeneration !== filter.generation
              ? `(for generation ${condition.observedGeneration}, spec is at ${filter.generation}) `
              : "") + condition.message,
          ]),
        ).map((line) => `  ${line}`),
      );
    }
    const exposed = new Map(
      (filter.status?.devicesExposed ?? []).map((entry) => [entry.resourceName, entry]),
    );
    const statusCount = (count: number | null | undefined) =>
      filter.status === null ? "?" : String(count ?? 0);
    const withPfs = (entry: ExposedCount | undefined) =>
      filter.status === null && entry === undefined
        ? "?"
        : `${entry?.count ?? 0}${entry?.wholePfs ? ` +${entry.wholePfs} whole PF${entry.wholePfs === 1 ? "" : "s"}` : ""}`;
    lines.push(
      ...alignColumns([
        ["", "STATUS", "PUBLISHED"],
        ["nodes", statusCount(filter.status?.matchedNodes), String(filter.published.matchedNodes)],
        ...filter.published.devicesExposed.map((entry) => [
          entry.resourceName,
          withPfs(exposed.get(entry.resourceName)),
          withPfs(entry),
        ]),
      ]).map((line) => `  ${line}`),
    );
    lines.push(
      ...treeRows(
        filter.nodes.map((node) => [
          node.name,
          node.vfs
            .map(({ resourceName, devices, wholePfs }) => {
              const shown = wide ? devices : devices.slice(0, LISTED_DEVICES);
              const more = devices.length - shown.length;
              const pfs = wholePfs.length > 0 ? ` + whole PF ${wholePfs.join(" ")}` : "";
              return `${resourceName} ${devices.length}${shown.length > 0 ? `: ${shown.join(" ")}` : ""}${more > 0 ? ` +${more} more` : ""}${pfs}`;
            })
            .join("; ") || "-",
        ]),
      ),
    );
    if (filter.nodes.length === 0) lines.push("  (selects no node)");
  }
  if (list.filters.length === 0) lines.push("No SriovResourceFilters found.");
  return lines.map(terminalSafe).join("\n");
}

function readStatus(object: unknown): {
  status: FilterReport["status"];
  problem: string | null;
} {
  const raw =
    typeof object === "object" && object !== null && Object.hasOwn(object, "status")
      ? (object as { status: unknown }).status
      : undefined;
  if (raw === undefined || raw === null) return { status: null, problem: null };
  try {
    const status = decode(sriovResourceFilterStatusSchema, raw, "status");
    return {
      status: {
        conditions: (status.conditions ?? []).map((condition) => ({
          type: condition.type,
          status: condition.status,
          reason: condition.reason,
          message: condition.message,
          observedGeneration: condition.observedGeneration ?? null,
        })),
        matchedNodes: status.matchedNodes ?? null,
        devicesExposed: status.devicesExposed ?? [],
      },
      problem: null,
    };
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    return {
      status: null,
      problem: `unreadable: ${error.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")}`,
    };
  }
}

/** A node's name and labels, checked (a label that is not a string is left out). */
function nodeLabels(node: unknown): { name: string; labels: Record<string, string> } {
  const metadata = record(record(node)["metadata"]);
  const name = metadata["name"];
  return {
    name: typeof name === "string" ? name : "",
    labels: Object.fromEntries(
      Object.entries(record(metadata["labels"])).filter(
        (entry): entry is [string, string] => typeof entry[1] === "string",
      ),
    ),
  };
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
