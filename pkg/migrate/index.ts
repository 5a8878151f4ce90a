/**
 * `dra-driver-sriov migrate`: the SR-IOV network device plugin's configuration, translated
 * into a SriovResourceFilter and DeviceClasses, with a report of what does not carry over.
 * Pure: reading files and the API server is the command's job.
 */
export {
  CONFIG_KEY,
  DevicePluginConfigError,
  parseDevicePluginConfig,
  type DevicePluginConfig,
  type DpResource,
  type DpSelector,
} from "./device-plugin-config.js";
export {
  networkAttachmentsOf,
  objectsOfManifest,
  RESOURCE_NAME_ANNOTATION,
  type NetworkAttachment,
} from "./network-attachments.js";
export { formatFinding, manifestsOf, renderReport, renderYamlStream } from "./render.js";
export {
  translateDevicePluginConfig,
  type DeviceClass,
  type Finding,
  type FindingKind,
  type MigrateOptions,
  type Migration,
} from "./translate.js";
