import type { Logger } from "pino";
import { selectDevices, withOriginalDrivers, type Device } from "../devices/model.js";
import {
  applyResourceFilters,
  formatFilterRef,
  type FilterObject,
  type NodeFilterResult,
} from "../filters/apply.js";
import { filterObjectOf } from "../filters/decode.js";
import { translatePolicies } from "../policies/translate.js";
import { devlinkEswitchReader, type EswitchReader } from "../host/devlink.js";
import { discoverHost, type HostInventory } from "../host/discovery.js";
import type { HostPaths } from "../host/paths.js";
import { Rediscovery } from "../host/rediscovery.js";
import type { KubeClient } from "../../lib/kube/client.js";
import { ListWatch } from "../../lib/kube/list-watch.js";
import { SlicePublisher } from "./slice-publisher.js";
import { withWholePfTaints } from "./whole-pf-taints.js";
import type { DeviceTaint } from "../slices/render.js";
import type { PublishOrder } from "../slices/order.js";
import {
  deviceAttributesPath,
  sriovResourceFiltersPath,
  sriovResourcePoliciesPath,
} from "../../api/v1alpha1/group.js";
import { nodesPath } from "../../lib/kube/api-paths.js";

export interface NodePublisherOptions {
  paths: HostPaths;
  driverName: string;
  nodeName: string;
  /**
   * Namespace whose SriovResourceFilters (and the upstream driver's SriovResourcePolicies
   * and DeviceAttributes) apply; those elsewhere are ignored.
   */
  filterNamespace: string;
  publishHostUsedVfs: boolean;
  /** Publish each PF whole too, exclusive with its VFs through counters (off by default). */
  publishPfs?: boolean;
  /** The order the scheduler meets the VFs in (pkg/slices/order); spread by default. */
  publishOrder?: PublishOrder;
  rediscoveryIntervalMs: number;
  logger: Logger;
  /** Drivers VFs had before a prepared claim rebound them (PCI address → driver). */
  originalDrivers?: () => ReadonlyMap<string, string>;
  /** Where PFs' e-switch modes come from: the running kernel's devlink unless given. */
  readEswitch?: EswitchReader;
}

/**
 * What this node publishes, kept current: the host's VFs (rediscovered on an interval and
 * on demand), shaped by the SriovResourceFilters, and the upstream driver's
 * SriovResourcePolicies with their DeviceAttributes, that select this node (watched, with
 * the node's labels), rendered and written as ResourceSlices. Any change on any side
 * re-publishes at once. The upstream kinds are optional: without their CRDs, none exist.
 */
export class NodeDevicePublisher {
  private readonly rediscovery: Rediscovery;
  private readonly filters: ListWatch;
  private readonly policies: ListWatch;
  private readonly deviceAttributes: ListWatch;
  private readonly node: ListWatch;
  readonly slices: SlicePublisher;
  private inventory: HostInventory | undefined;
  private taints: ReadonlyMap<string, readonly DeviceTaint[]> = new Map();
  /** The last filter outcome, for logs and metrics. */
  lastResult: NodeFilterResult | undefined;

  constructor(
    client: KubeClient,
    private readonly options: NodePublisherOptions,
  ) {
    const { logger } = options;
    this.slices = new SlicePublisher(client, {
      driverName: options.driverName,
      nodeName: options.nodeName,
      logger,
      order: options.publishOrder,
    });
    const readEswitch = options.readEswitch ?? devlinkEswitchReader(logger);
    this.rediscovery = new Rediscovery(() => discoverHost(options.paths, readEswitch), {
      intervalMs: options.rediscoveryIntervalMs,
      logger,
      onChange: (inventory) => {
        for (const warning of inventory.warnings) logger.warn(warning, "skipped host data");
        this.inventory = inventory;
        this.recompute();
      },
    });
    this.filters = new ListWatch(client, {
      path: sriovResourceFiltersPath(options.filterNamespace),
      logger,
      onChange: () => this.recompute(),
    });
    this.policies = new ListWatch(client, {
      path: sriovResourcePoliciesPath(options.filterNamespace),
      logger,
      optional: true,
      onChange: () => this.recompute(),
    });
    this.deviceAttributes = new ListWatch(client, {
      path: deviceAttributesPath(options.filterNamespace),
      logger,
      optional: true,
      onChange: () => this.recompute(),
    });
    this.node = new ListWatch(client, {
      path: nodesPath(),
      fieldSelector: `metadata.name=${options.nodeName}`,
      logger,
      onChange: () => this.recompute(),
    });
  }

  start(): void {
    this.slices.start();
    this.filters.start();
    this.policies.start();
    this.deviceAttributes.start();
    this.node.start();
    this.rediscovery.start();
  }

  /**
   * Taints by device name (the unhealthy devices'); the pool is re-published with them. Taints
   * of devices the node does not publish are ignored.
   */
  setTaints(taints: ReadonlyMap<string, readonly DeviceTaint[]>): void {
    this.taints = taints;
    if (this.lastResult) this.publishNow(this.lastResult.devices);
  }

  /** The resourceName this node publishes a device under, from memory; undefined if none. */
  resourceNameOf(deviceName: string): string | undefined {
    return this.lastResult?.devices.find((device) => device.name === deviceName)?.resourceName;
  }

  async stop(): Promise<void> {
    this.rediscovery.stop();
    await Promise.all([
      this.filters.stop(),
      this.policies.stop(),
      this.deviceAttributes.stop(),
      this.node.stop(),
      this.slices.stop(),
    ]);
  }

  private recompute(): void {
    const synced = [this.filters, this.policies, this.deviceAttributes, this.node];
    if (!this.inventory || !synced.every((watch) => watch.hasSynced)) return;
    const { logger } = this.options;
    const selection = selectDevices(
      this.inventory,
      this.options.publishHostUsedVfs,
      this.options.publishPfs ?? false,
    );
    if (selection.hostUsed.length > 0) {
      logger.info(
        { vfs: selection.hostUsed.map((device) => device.vf.pciAddress) },
        "withholding VFs the host uses (--publish-host-used-vfs to publish them)",
      );
    }
    if (selection.hostUsedPfs.length > 0) {
      logger.info(
        { pfs: selection.hostUsedPfs.map((device) => device.pf.pciAddress) },
        "never publishing whole the PFs the host uses (an address or route on the PF or one of its VFs)",
      );
    }
    const node = [...this.node.items.values()][0];
    const policies = translatePolicies(
      [...this.policies.items.values()],
      [...this.deviceAttributes.items.values()],
      { namespace: this.options.filterNamespace, driverName: this.options.driverName },
    );
    for (const skipped of policies.skippedAttributes) {
      logger.error(
        { deviceAttributes: `${skipped.namespace}/${skipped.name}`, problems: skipped.problems },
        "invalid DeviceAttributes lends no attributes; fix it so the policies that select it publish them",
      );
    }
    const result = applyResourceFilters({
      nodeLabels: node?.metadata?.labels ?? {},
      nodeName: this.options.nodeName,
      policies: policies.policies,
      devices: [
        ...selection.pfs,
        ...withOriginalDrivers(selection.devices, this.options.originalDrivers?.() ?? new Map()),
      ],
      filters: this.decodedFilters(),
    });
    this.lastResult = result;
    for (const conflict of result.conflicts) {
      logger.warn(
        {
          filter: formatFilterRef(conflict.filter),
          losesTo: conflict.losesTo.map(formatFilterRef),
          vfs: conflict.lostVfs,
        },
        "lost VFs to filters or policies that take precedence (SriovResourceFilters first, then SriovResourcePolicies, each by namespace and name)",
      );
    }
    for (const rejected of result.rejected) {
      logger.error(
        { filter: formatFilterRef(rejected.filter), problems: rejected.problems },
        "invalid SriovResourceFilter or SriovResourcePolicy takes no VFs",
      );
    }
    this.publishNow(result.devices);
  }

  /** The devices with their taints, whole PFs sharing their VFs' PF-wide ones. */
  private publishNow(devices: readonly Device[]): void {
    void this.slices.publish(devices, withWholePfTaints(this.taints, devices));
  }

  /** Every filter object, unreadable ones failing closed (filterObjectOf). */
  private decodedFilters(): FilterObject[] {
    return [...this.filters.items.values()].map((object) =>
      filterObjectOf(object, this.options.filterNamespace),
    );
  }
}
