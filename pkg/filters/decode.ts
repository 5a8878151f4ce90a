import { SchemaError } from "../../api/schema/decode.js";
import { decodeSriovResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import type { FilterObject } from "./apply.js";
import type { FilterProblem } from "./validate.js";
import { messageOf } from "../../lib/util/errors.js";

/**
 * A SriovResourceFilter object from the API server as the node applies it. Its status is
 * never read (a newer controller may write fields this node does not know). A filter whose
 * spec cannot be read fails closed: it takes no VFs on the nodes it selects, and it selects
 * every node unless its nodeSelector is still a plain label map. Ignoring it instead would
 * publish every VF a restricting filter meant to hide.
 */
export function filterObjectOf(object: unknown, defaultNamespace: string): FilterObject {
  const record = isRecord(object) ? object : {};
  const withoutStatus = Object.fromEntries(
    Object.entries(record).filter(([key]) => key !== "status"),
  );
  try {
    const filter = decodeSriovResourceFilter(withoutStatus);
    return {
      metadata: {
        namespace: filter.metadata.namespace ?? defaultNamespace,
        name: filter.metadata.name ?? "",
        ...(filter.metadata.generation === undefined
          ? {}
          : { generation: filter.metadata.generation }),
      },
      spec: filter.spec,
    };
  } catch (error) {
    const metadata = isRecord(record["metadata"]) ? record["metadata"] : {};
    const spec = isRecord(record["spec"]) ? record["spec"] : {};
    const generation = metadata["generation"];
    return {
      metadata: {
        namespace: stringOr(metadata["namespace"], defaultNamespace),
        name: stringOr(metadata["name"], ""),
        ...(typeof generation === "number" ? { generation } : {}),
      },
      spec: { nodeSelector: labelMapOr(spec["nodeSelector"], {}), configs: [] },
      undecodable: problemsOf(error),
    };
  }
}

/** What a decoder threw, as problems for a status or a log. */
export function problemsOf(error: unknown): FilterProblem[] {
  if (error instanceof SchemaError) return [...error.issues];
  return [{ path: "", message: messageOf(error) }];
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}

/** A map of strings to strings, else the fallback (an empty selector selects every node). */
function labelMapOr(value: unknown, fallback: Record<string, string>): Record<string, string> {
  if (!isRecord(value)) return fallback;
  const entries = Object.entries(value);
  return entries.every(([, label]) => typeof label === "string")
    ? Object.fromEntries(entries as [string, string][])
    : fallback;
}
