import type { FlagSpecs, ParsedFlags } from "../../../lib/flags/flags.js";
import { createLogger } from "../../../lib/log/logger.js";
import { startNodeDaemon } from "../../../pkg/node/daemon.js";
import { DEFAULT_PUBLISH_ORDER, PUBLISH_ORDERS } from "../../../pkg/slices/order.js";
import {
  clusterFlags,
  healthAddress,
  hostFlags,
  loggingFlags,
  nodeFlags,
} from "../common-flags.js";
import { shutdownSignal } from "../shutdown.js";
import type { Command } from "./command.js";

const TAINT_EFFECTS = ["NoSchedule", "NoExecute", "none"] as const;

const flags = {
  ...hostFlags,
  ...nodeFlags,
  ...clusterFlags,
  "cdi-root": {
    type: "string",
    description: "CDI spec directory on the host",
    default: "/var/run/cdi",
  },
  "kubelet-dir": {
    type: "string",
    description: "the kubelet's root directory on the host",
    default: "/var/lib/kubelet",
  },
  "pod-uid": {
    type: "string",
    description: "this pod's UID (downward API): per-pod socket names for rolling updates",
  },
  "publish-pfs": {
    type: "boolean",
    description:
      "also publish each SR-IOV PF as a whole device (deviceType pf), never allocated together with one of its VFs (needs DRAPartitionableDevices; without it, VFs only)",
    default: false,
  },
  "publish-order": {
    type: "string",
    description:
      "the order VFs are published in, which is the order the scheduler tries them: spread interleaves the VFs of all PFs so single-VF claims land on the PFs in turn; pack lists them by PCI address so claims fill one PF before the next (keeps PFs whole for --publish-pfs claims)",
    default: DEFAULT_PUBLISH_ORDER,
    choices: PUBLISH_ORDERS,
  },
  "interface-prefix": {
    type: "string",
    description: "default interface names in pods are <prefix>1, <prefix>2, ...",
    default: "net",
  },
  "allow-cross-namespace-networks": {
    type: "boolean",
    description: "let a VfConfig name a NetworkAttachmentDefinition outside the claim's namespace",
    default: false,
  },
  "networks-annotation": {
    type: "boolean",
    description:
      "serve the k8s.v1.cni.cncf.io/networks annotation of pods that get VFs through extended resources (device-plugin pods): each VF goes to the network whose k8s.v1.cni.cncf.io/resourceName is its resource, and the pod gets k8s.v1.cni.cncf.io/network-status. Refuses to start when Multus is configured in --cni-conf-dir",
    default: false,
  },
  "device-info": {
    type: "boolean",
    description:
      "write Multus's device information of each prepared device, /var/run/k8s.cni.cncf.io/devinfo/dp/<claim name>-<PCI address>-device.json (type pci), with its CDI spec, and remove it at unprepare",
    default: false,
  },
  "cni-conf-dir": {
    type: "string",
    description:
      "the node's CNI configuration directory, where --networks-annotation looks for Multus",
    default: "/etc/cni/net.d",
  },
  "bind-timeout-ms": {
    type: "integer",
    description: "how long a VF may take to bind to a driver (vfio-pci and back)",
    default: 10_000,
  },
  "rediscovery-interval-seconds": {
    type: "integer",
    description: "how often to look at sysfs again for VF changes",
    default: 30,
  },
  "nri-socket": {
    type: "string",
    description:
      "the container runtime's NRI socket; VFs with a network are plugged into pods when their sandbox starts. Empty: never (no CNI is run)",
    default: "/var/run/nri/nri.sock",
  },
  "nri-plugin-index": {
    type: "string",
    description: "two-digit NRI plugin index: the order among the runtime's NRI plugins",
    default: "10",
  },
  "cni-bin-dir": {
    type: "string",
    description: "directories of CNI plugins (the SR-IOV CNI, IPAM plugins), colon-separated",
    default: "/opt/cni/bin",
  },
  "cni-cache-dir": {
    type: "string",
    description:
      "where the results of CNI ADDs are kept for their DEL: a folder of its own in the node's CNI state directory",
    default: "/var/lib/cni/dra-driver-sriov",
  },
  "cni-timeout-ms": {
    type: "integer",
    description:
      "longest a CNI plugin may run; 0: the runtime's NRI request timeout less 250 ms, so the runtime never drops the plugin",
    default: 0,
  },
  "health-port": {
    type: "integer",
    description: "port of /healthz, /readyz and /metrics on the node (host network)",
    default: 51515,
  },
  "health-address": {
    type: "string",
    description:
      "IP address the health port listens on; empty: all of the node's. Nodes that share one network namespace (several emulated nodes on one machine) each give their own",
    default: "",
  },
  "device-health-interval-ms": {
    type: "integer",
    description:
      "how often each PF's link is read for device health (each VF's driver and presence: every 5 such intervals)",
    default: 1_000,
  },
  "unhealthy-taint-effect": {
    type: "string",
    description:
      "taint on unhealthy devices in the ResourceSlices: NoSchedule keeps new claims off them; NoExecute also evicts the pods using them; none publishes no taints",
    default: "NoSchedule",
    choices: TAINT_EFFECTS,
  },
  ...loggingFlags,
} as const satisfies FlagSpecs;

/** `kubelet-plugin`: the flags, as the node daemon's options (pkg/node). */
export const kubeletPluginCommand: Command<typeof flags> = {
  flags,
  async run(options: ParsedFlags<typeof flags>): Promise<number> {
    const logger = createLogger({ level: options["log-level"], format: options["log-format"] });
    const effect = TAINT_EFFECTS.find((known) => known === options["unhealthy-taint-effect"]);
    const daemon = await startNodeDaemon({
      driverName: options["driver-name"],
      nodeName: options["node-name"],
      hostRoot: options["host-root"],
      kubeconfig: options.kubeconfig,
      namespace: options.namespace,
      cdiRoot: options["cdi-root"],
      kubeletDir: options["kubelet-dir"],
      podUid: options["pod-uid"],
      interfacePrefix: options["interface-prefix"],
      allowCrossNamespaceNetworks: options["allow-cross-namespace-networks"],
      networksAnnotation: options["networks-annotation"],
      deviceInfo: options["device-info"],
      cniConfDir: options["cni-conf-dir"],
      bindTimeoutMs: options["bind-timeout-ms"],
      rediscoveryIntervalSeconds: options["rediscovery-interval-seconds"],
      publishHostUsedVfs: options["publish-host-used-vfs"],
      publishPfs: options["publish-pfs"],
      publishOrder: options["publish-order"],
      nriSocket: options["nri-socket"],
      nriPluginIndex: options["nri-plugin-index"],
      cniBinDirs: options["cni-bin-dir"].split(":").filter((dir) => dir !== ""),
      cniCacheDir: options["cni-cache-dir"],
      cniTimeoutMs: options["cni-timeout-ms"],
      healthPort: options["health-port"],
      healthAddress: healthAddress(options["health-address"]),
      deviceHealthIntervalMs: options["device-health-interval-ms"],
      // The flag parser has checked the choice already.
      unhealthyTaintEffect: effect ?? "NoSchedule",
      logger,
    });
    const signal = await shutdownSignal();
    logger.info({ signal }, "stopping: deregistering and letting running calls finish");
    await daemon.stop();
    return 0;
  },
};
