import { stringify } from "yaml";
import type { Finding, Migration } from "./translate.js";

/** The report, as lines of text: what each resource became, each network's class, and every finding. */
export function renderReport(migration: Migration): string[] {
  const lines = ["Migrated from the SR-IOV network device plugin by `dra-driver-sriov migrate`."];
  if (migration.resources.length === 0) lines.push("No resource could be carried over.");
  for (const resource of migration.resources) {
    lines.push(
      `${resource.extendedResourceName}: DeviceClass ${resource.deviceClass}, resourceName ${resource.resourceName}`,
    );
  }
  for (const { network, deviceClass } of migration.networks) {
    const served = deviceClass === undefined ? "no DeviceClass" : `DeviceClass ${deviceClass}`;
    lines.push(
      `NetworkAttachmentDefinition ${network.namespace}/${network.name} (${network.resourceName}): ${served}`,
    );
  }
  const exact = migration.findings.length === 0;
  lines.push(
    exact
      ? "Every selector is expressed exactly."
      : `Not carried over exactly (${migration.findings.length}):`,
  );
  for (const finding of migration.findings) lines.push(`- ${formatFinding(finding)}`);
  return lines;
}

export function formatFinding(finding: Finding): string {
  const where = finding.field === "" ? finding.subject : `${finding.subject} ${finding.field}`;
  return `[${finding.kind}] ${where}: ${finding.message}`;
}

/** The objects to apply, in the order to apply them: the filter, then the classes. */
export function manifestsOf(migration: Migration): object[] {
  return [
    ...(migration.filter === undefined ? [] : [migration.filter]),
    ...migration.deviceClasses,
  ];
}

/** One YAML stream: the report as comments, then every object as a document (kubectl apply -f takes it). */
export function renderYamlStream(migration: Migration): string {
  const comment = renderReport(migration)
    .map((line) => `# ${line}`)
    .join("\n");
  const documents = manifestsOf(migration).map((object) => stringify(object, { lineWidth: 0 }));
  return [comment + "\n", ...documents].join("---\n");
}
