import { stringify } from "yaml";
import { formatInventoryTable } from "../../../pkg/devices/inventory-table.js";
import { selectDevices } from "../../../pkg/devices/model.js";
import type { FlagSpecs, ParsedFlags } from "../../../lib/flags/flags.js";
import { devlinkEswitchReader } from "../../../pkg/host/devlink.js";
import { discoverHost } from "../../../pkg/host/discovery.js";
import { HostPaths } from "../../../pkg/host/paths.js";
import { createLogger } from "../../../lib/log/logger.js";
import { renderSlices } from "../../../pkg/slices/render.js";
import { hostFlags, loggingFlags, nodeFlags } from "../common-flags.js";
import type { Command } from "./command.js";

const flags = {
  ...hostFlags,
  ...nodeFlags,
  output: {
    type: "string",
    short: "o",
    description: "json/yaml: a v1 List of ResourceSlices; table: PF → VF tree",
    default: "table",
    choices: ["json", "yaml", "table"],
  },
  ...loggingFlags,
} as const satisfies FlagSpecs;

export const discoverCommand: Command<typeof flags> = {
  flags,
  async run(options: ParsedFlags<typeof flags>, out: NodeJS.WritableStream): Promise<number> {
    const logger = createLogger({ level: options["log-level"], format: options["log-format"] });
    const inventory = await discoverHost(
      new HostPaths({ root: options["host-root"] }),
      devlinkEswitchReader(logger),
    );
    for (const warning of inventory.warnings) logger.warn(warning, "skipped host data");
    const selection = selectDevices(inventory, options["publish-host-used-vfs"]);
    if (options.output === "table") {
      out.write(formatInventoryTable(selection, inventory.warnings) + "\n");
      return 0;
    }
    const slices = renderSlices(selection.devices, {
      driverName: options["driver-name"],
      nodeName: options["node-name"],
      generation: 1,
    });
    const list = { apiVersion: "v1", kind: "List", items: slices };
    out.write(options.output === "json" ? JSON.stringify(list, null, 2) + "\n" : stringify(list));
    return 0;
  },
};
