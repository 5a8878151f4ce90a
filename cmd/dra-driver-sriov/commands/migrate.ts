import fs from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { decodeSriovResourceFilter } from "../../../api/v1alpha1/sriov-resource-filter.js";
import { UsageError, type FlagSpecs, type ParsedFlags } from "../../../lib/flags/flags.js";
import { configMapsPath, networkAttachmentDefinitionsPath } from "../../../lib/kube/api-paths.js";
import { KubeClient, type KubeList } from "../../../lib/kube/client.js";
import { validateFilterSpec } from "../../../pkg/filters/validate.js";
import {
  CONFIG_KEY,
  networkAttachmentsOf,
  objectsOfManifest,
  parseDevicePluginConfig,
  renderReport,
  renderYamlStream,
  translateDevicePluginConfig,
  type Migration,
} from "../../../pkg/migrate/index.js";
import { clusterFlags, DEFAULT_DRIVER_NAME } from "../common-flags.js";
import type { Command } from "./command.js";

const MAX_FILE_BYTES = 1024 * 1024;

const flags = {
  "config-file": {
    type: "string",
    description: `the device plugin's ConfigMap (YAML or JSON) or its ${CONFIG_KEY}`,
  },
  configmap: {
    type: "string",
    description: "namespace/name of the device plugin's ConfigMap to read from the API server",
  },
  "config-key": {
    type: "string",
    description:
      "key of the ConfigMap's data that holds the config (per-node ConfigMaps name one per node)",
    default: CONFIG_KEY,
  },
  "nad-file": {
    type: "string",
    description: "NetworkAttachmentDefinitions (YAML documents or a List) to map to DeviceClasses",
  },
  "nads-from-cluster": {
    type: "boolean",
    description: "read every NetworkAttachmentDefinition of the cluster from the API server",
    default: false,
  },
  "resource-prefix": {
    type: "string",
    description: "the device plugin's -resource-prefix, for resources without resourcePrefix",
    default: "intel.com",
  },
  "filter-name": {
    type: "string",
    description: "name of the SriovResourceFilter written",
    default: "sriov-device-plugin",
  },
  ...clusterFlags,
  "node-selector": {
    type: "string",
    description: "node labels the filter applies to, key=value,... (empty: every node)",
    default: "",
  },
  "driver-name": {
    type: "string",
    description: "DRA driver name and attribute domain of the CEL selectors",
    default: DEFAULT_DRIVER_NAME,
  },
  "output-dir": {
    type: "string",
    short: "o",
    description:
      "write sriov-resource-filter.yaml, device-classes.yaml and report.txt there; default: one YAML stream on stdout, the report as comments",
  },
} as const satisfies FlagSpecs;

type Options = ParsedFlags<typeof flags>;

export const migrateCommand: Command<typeof flags> = {
  flags,
  async run(options: Options, out: NodeJS.WritableStream): Promise<number> {
    if ((options["config-file"] === undefined) === (options.configmap === undefined)) {
      throw new UsageError("give exactly one of --config-file and --configmap");
    }
    const nodeSelector = parseNodeSelector(options["node-selector"]);
    const client = needsCluster(options) ? KubeClient.load(options.kubeconfig) : undefined;
    const config =
      options["config-file"] !== undefined
        ? parseDevicePluginConfig(
            readBounded(options["config-file"]),
            options["config-file"],
            options["config-key"],
          )
        : await configFromCluster(client!, options.configmap!, options["config-key"]);
    const networks = networkAttachmentsOf(
      [
        ...(options["nad-file"] === undefined
          ? []
          : objectsOfManifest(readBounded(options["nad-file"]), options["nad-file"])),
        ...(options["nads-from-cluster"] ? await nadsFromCluster(client!) : []),
      ],
      "default",
    );
    const migration = translateDevicePluginConfig(config, networks, {
      driverName: options["driver-name"],
      defaultPrefix: options["resource-prefix"],
      filterName: options["filter-name"],
      namespace: options.namespace,
      nodeSelector,
    });
    checkFilter(migration);
    if (options["output-dir"] === undefined) {
      out.write(renderYamlStream(migration));
    } else {
      writeDirectory(options["output-dir"], migration);
      out.write(renderReport(migration).join("\n") + "\n");
    }
    return 0;
  },
};

function needsCluster(options: Options): boolean {
  return options.configmap !== undefined || options["nads-from-cluster"];
}

/** `a=b,c=d` → { a: "b", c: "d" }. */
function parseNodeSelector(text: string): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of text.split(",").filter((part) => part.trim() !== "")) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new UsageError(`--node-selector: "${pair}" is not key=value`);
    selector[pair.slice(0, equals).trim()] = pair.slice(equals + 1).trim();
  }
  return selector;
}

/** What we write must be a filter the driver accepts; a failure here is a bug in the translation. */
function checkFilter(migration: Migration): void {
  if (migration.filter === undefined) return;
  const filter = decodeSriovResourceFilter(migration.filter, "the migrated SriovResourceFilter");
  const problems = validateFilterSpec(filter.spec);
  if (problems.length > 0) {
    throw new Error(
      `the migrated SriovResourceFilter is not valid: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
    );
  }
}

function readBounded(file: string): string {
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw new Error(`${file}: not a regular file`);
  if (stat.size > MAX_FILE_BYTES) throw new Error(`${file}: larger than ${MAX_FILE_BYTES} bytes`);
  return fs.readFileSync(file, "utf8");
}

async function configFromCluster(client: KubeClient, reference: string, key: string) {
  const [namespace, name, ...rest] = reference.split("/");
  if (rest.length > 0 || !namespace || !name) {
    throw new UsageError(`--configmap: "${reference}" is not namespace/name`);
  }
  const configMap = await client.request<unknown>({
    method: "GET",
    path: configMapsPath(namespace, name),
  });
  return parseDevicePluginConfig(JSON.stringify(configMap), `ConfigMap ${namespace}/${name}`, key);
}

async function nadsFromCluster(client: KubeClient): Promise<unknown[]> {
  const items: unknown[] = [];
  let next: string | undefined;
  do {
    const list = await client.request<KubeList<unknown>>({
      method: "GET",
      path: networkAttachmentDefinitionsPath(),
      query: { limit: 500, continue: next },
    });
    // Lists leave out kind on items; networkAttachmentsOf reads it.
    items.push(
      ...list.items.map((item) => ({ kind: "NetworkAttachmentDefinition", ...(item as object) })),
    );
    next = list.metadata.continue || undefined;
  } while (next !== undefined);
  return items;
}

function writeDirectory(dir: string, migration: Migration): void {
  fs.mkdirSync(dir, { recursive: true });
  const write = (file: string, text: string) => fs.writeFileSync(path.join(dir, file), text);
  if (migration.filter !== undefined) {
    write("sriov-resource-filter.yaml", stringify(migration.filter, { lineWidth: 0 }));
  }
  write(
    "device-classes.yaml",
    migration.deviceClasses.map((c) => stringify(c, { lineWidth: 0 })).join("---\n"),
  );
  write("report.txt", renderReport(migration).join("\n") + "\n");
}
