import type { JsonObject } from "../util/json.js";

/**
 * A CNI network configuration list (CNI spec 1.x, "Configuration format"). A single-plugin
 * configuration is held in this form too, as libcni does: a list of that one plugin.
 */
export type CniConfigList = JsonObject & {
  cniVersion: string;
  name: string;
  plugins: JsonObject[];
};
