import { isIP } from "node:net";
import os from "node:os";
import { UsageError, type FlagSpecs } from "../../lib/flags/flags.js";
import { LOG_FORMATS, LOG_LEVELS } from "../../lib/log/logger.js";

export const DEFAULT_DRIVER_NAME = "sriovnetwork.openshift.io";

export const loggingFlags = {
  "log-level": { type: "string", description: "log level", default: "info", choices: LOG_LEVELS },
  "log-format": {
    type: "string",
    description: "log line format",
    default: "json",
    choices: LOG_FORMATS,
  },
} as const satisfies FlagSpecs;

export const hostFlags = {
  "host-root": {
    type: "string",
    description: "directory where the host's / is visible (sysfs, /dev, /proc, /var/run)",
    default: "/",
  },
} as const satisfies FlagSpecs;

export const nodeFlags = {
  "node-name": {
    type: "string",
    description: "Kubernetes node this host is (from the downward API in a DaemonSet)",
    default: os.hostname(),
  },
  "driver-name": {
    type: "string",
    description: "DRA driver name and attribute domain",
    default: DEFAULT_DRIVER_NAME,
  },
  "publish-host-used-vfs": {
    type: "boolean",
    description: "also publish VFs whose netdev has an address or route in the host namespace",
    default: false,
  },
} as const satisfies FlagSpecs;

export const clusterFlags = {
  kubeconfig: {
    type: "string",
    description:
      "kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the pod's service account",
  },
  namespace: {
    type: "string",
    description: "namespace whose SriovResourceFilters apply (the driver's own namespace)",
    default: "dra-sriov-driver",
  },
} as const satisfies FlagSpecs;

export const healthFlags = {
  "health-port": {
    type: "integer",
    description: "port of /healthz, /readyz and /metrics (0: pick a free one)",
    default: 8081,
  },
} as const satisfies FlagSpecs;

/** The --health-address flag: empty (every address) or an IP address, nothing else. */
export function healthAddress(raw: string): string | undefined {
  if (raw === "") return undefined;
  if (isIP(raw) === 0) {
    throw new UsageError(
      `--health-address "${raw}" is not an IP address: give the node's address (status.hostIP) or leave it empty`,
    );
  }
  return raw;
}
