import { parseAllDocuments } from "yaml";
import { isJsonObject } from "../../lib/util/json.js";
import { boundedText, DevicePluginConfigError, MAX_CONFIG_BYTES } from "./device-plugin-config.js";

/** The annotation by which a NetworkAttachmentDefinition names the device plugin resource it needs. */
export const RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName";
const NAD_KIND = "NetworkAttachmentDefinition";
const MAX_NADS = 4096;

/** A NetworkAttachmentDefinition that asks for a device plugin resource. */
export interface NetworkAttachment {
  namespace: string;
  name: string;
  /** `<prefix>/<name>`, as the annotation spells it. */
  resourceName: string;
}

/**
 * The NetworkAttachmentDefinitions among objects (from a file, or a list from the API
 * server) that carry the resourceName annotation; others are left out. Objects without a
 * namespace get `defaultNamespace`.
 */
export function networkAttachmentsOf(
  objects: readonly unknown[],
  defaultNamespace: string,
): NetworkAttachment[] {
  const found: NetworkAttachment[] = [];
  for (const object of objects.slice(0, MAX_NADS)) {
    if (!isJsonObject(object) || object.kind !== NAD_KIND) continue;
    const metadata = isJsonObject(object.metadata) ? object.metadata : {};
    const annotations = isJsonObject(metadata.annotations) ? metadata.annotations : {};
    const resourceName = annotations[RESOURCE_NAME_ANNOTATION];
    if (typeof resourceName !== "string" || typeof metadata.name !== "string") continue;
    const namespace =
      typeof metadata.namespace === "string" ? metadata.namespace : defaultNamespace;
    found.push({
      namespace: boundedText(namespace),
      name: boundedText(metadata.name),
      resourceName: boundedText(resourceName.trim()),
    });
  }
  return found;
}

/** The objects of a YAML or JSON file: its documents, with v1 Lists opened. */
export function objectsOfManifest(text: string, source: string): unknown[] {
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) {
    throw new DevicePluginConfigError(`${source}: larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  const objects: unknown[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      throw new DevicePluginConfigError(
        `${source}: not YAML: ${document.errors[0]!.message.split("\n")[0]} (kubectl get network-attachment-definitions -A -o yaml writes a file that reads)`,
      );
    }
    const object: unknown = document.toJS({ maxAliasCount: 0 });
    if (isJsonObject(object) && object.kind === "List" && Array.isArray(object.items)) {
      objects.push(...object.items);
    } else if (object !== null) {
      objects.push(object);
    }
  }
  return objects;
}
