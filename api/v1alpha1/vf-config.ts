import { array, boolean, decode, object, string, type Infer } from "../schema/index.js";
import { dnsLabel, dnsSubdomain, interfaceNameRule, ipCidrRule, macAddress } from "./formats.js";
import { API_VERSION, UPSTREAM_API_VERSION } from "./group.js";

export const VF_CONFIG_KIND = "VfConfig";

export const vfConfigSchema = object(
  {
    apiVersion: string({ enum: [API_VERSION, UPSTREAM_API_VERSION] }).describe(
      "The upstream driver's group is accepted too, so its manifests work unchanged.",
    ),
    kind: string({ enum: [VF_CONFIG_KIND] }),
    driver: string({ enum: ["", "default", "vfio-pci"] })
      .optional()
      .describe(
        "Driver to bind the VF to while the pod runs: `vfio-pci` for DPDK and VMs; " +
          '`""` or `default` keeps the kernel network driver.',
      ),
    ifName: string()
      .refine(interfaceNameRule)
      .optional()
      .describe("Name of the VF's interface inside the pod."),
    netAttachDefName: dnsSubdomain
      .optional()
      .describe("NetworkAttachmentDefinition with the CNI configuration for the VF."),
    netAttachDefNamespace: dnsLabel
      .optional()
      .describe("Namespace of the NetworkAttachmentDefinition; default: the claim's namespace."),
    addVhostMount: boolean()
      .optional()
      .describe(
        "Give the pod `/dev/vhost-net` and `/dev/net/tun`, for DPDK virtio-user exception paths.",
      ),
    ips: array(string().refine(ipCidrRule), { maxItems: 16 })
      .optional()
      .describe(
        "Static addresses of the VF's interface in the pod, handed to the CNI as " +
          "`runtimeConfig.ips`: the network's IPAM must declare the `ips` capability " +
          '(e.g. `"ipam": {"type": "static"}` with `"capabilities": {"ips": true}`).',
      ),
    mac: macAddress
      .optional()
      .describe(
        "MAC address of the VF's interface in the pod, handed to the CNI as " +
          "`runtimeConfig.mac`: a plugin of the network must declare the `mac` capability.",
      ),
  },
  { title: VF_CONFIG_KIND },
).describe(
  "Opaque DRA configuration in `config[].opaque.parameters` of a DeviceClass or ResourceClaim " +
    "(driver `sriovnetwork.openshift.io`). Several configs for a VF merge field by field; " +
    "later ones win: class configs first, then claim configs, each in order. " +
    "A field that is set overrides, an absent one does not.",
);

export type VfConfig = Infer<typeof vfConfigSchema>;

/**
 * Decodes opaque configuration parameters. `path` says where they came from, e.g.
 * `ResourceClaim default/dpdk config[0].opaque.parameters`; the thrown SchemaError names
 * that path and the bad field.
 */
export function decodeVfConfig(json: unknown, path: string): VfConfig {
  return decode(vfConfigSchema, json, path);
}

type VfSetting = Exclude<keyof VfConfig, "apiVersion" | "kind">;

/** Every field but the type meta, read off the schema so a new field merges without a code change. */
const VF_SETTINGS = Object.keys(vfConfigSchema.shape).filter(
  (key): key is VfSetting => key !== "apiVersion" && key !== "kind",
);

/**
 * Merges configs in order: for each field, the last config that sets it wins (an explicit
 * `""` or `false` counts as set). The result carries our own apiVersion.
 */
export function mergeVfConfigs(configs: readonly VfConfig[]): VfConfig {
  const merged: VfConfig = { apiVersion: API_VERSION, kind: VF_CONFIG_KIND };
  for (const config of configs) {
    for (const key of VF_SETTINGS) copyIfSet(merged, config, key);
  }
  return merged;
}

function copyIfSet<K extends VfSetting>(target: VfConfig, source: VfConfig, key: K): void {
  const value = source[key];
  if (value !== undefined) target[key] = value;
}
