import type { SriovResourceFilterSpec } from "../../api/v1alpha1/sriov-resource-filter.js";
import { parsePfSelector, parseRootDeviceSelector } from "./pf-selector.js";

/** Something the schema cannot catch, at a path like `spec.configs[1].resourceName`. */
export interface FilterProblem {
  path: string;
  message: string;
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Semantic checks on a decoded spec, for the `Accepted` condition: duplicate resourceNames
 * (also a CEL rule in the CRD, checked again for objects stored before it), `pfNames`
 * ranges that run backwards or name impossible VF indices, and node selector keys that
 * are not label keys (they could never match). An empty list means the spec is valid.
 */
export function validateFilterSpec(spec: SriovResourceFilterSpec): FilterProblem[] {
  return [
    ...nodeSelectorProblems(spec.nodeSelector ?? {}),
    ...duplicateResourceNames(spec),
    ...rangedSelectorProblems(spec, "pfNames", parsePfSelector),
    ...rangedSelectorProblems(spec, "rootDevices", parseRootDeviceSelector),
  ];
}

function nodeSelectorProblems(selector: Record<string, string>): FilterProblem[] {
  return Object.keys(selector).flatMap((key) => {
    const problem = labelKeyProblem(key);
    return problem === undefined
      ? []
      : [{ path: `spec.nodeSelector[${JSON.stringify(key)}]`, message: problem }];
  });
}

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `"${key}" is not a label key: the prefix before "/" must be a DNS subdomain such as kubernetes.io`;
  }
  if (name.length > 63 || !LABEL_NAME.test(name)) {
    return `"${key}" is not a label key: the name must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

function duplicateResourceNames(spec: SriovResourceFilterSpec): FilterProblem[] {
  const firstIndex = new Map<string, number>();
  return spec.configs.flatMap((config, index) => {
    const first = firstIndex.get(config.resourceName);
    if (first === undefined) {
      firstIndex.set(config.resourceName, index);
      return [];
    }
    return [
      {
        path: `spec.configs[${index}].resourceName`,
        message: `"${config.resourceName}" is already the resourceName of spec.configs[${first}]: merge the two configs' resourceFilters or rename one`,
      },
    ];
  });
}

function rangedSelectorProblems(
  spec: SriovResourceFilterSpec,
  field: "pfNames" | "rootDevices",
  parse: (text: string) => { problem: string } | object,
): FilterProblem[] {
  return spec.configs.flatMap((config, c) =>
    config.resourceFilters.flatMap((filter, f) =>
      (filter[field] ?? []).flatMap((text, p) => {
        const parsed = parse(text);
        if (!("problem" in parsed)) return [];
        return [
          {
            path: `spec.configs[${c}].resourceFilters[${f}].${field}[${p}]`,
            message: parsed.problem,
          },
        ];
      }),
    ),
  );
}
