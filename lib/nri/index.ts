/**
 * An NRI (Node Resource Interface) plugin: the container runtime tells it about pod
 * sandboxes starting, stopping and going away, over ttrpc on the runtime's NRI socket.
 */
export type { BackoffOptions } from "./backoff.js";
export type { NriPluginHandlers, RuntimeConfiguration } from "./connection.js";
export { eventMask, NriEvent, SUBSCRIBED_EVENT_MASK, type PodEvent } from "./events.js";
export { ConnectionId, MAX_FRAME_PAYLOAD, MAX_WRITE_FRAME_PAYLOAD, Multiplexer } from "./mux.js";
export type { PodSandbox } from "./pod.js";
export {
  checkPluginIndex,
  checkPluginName,
  startNriPlugin,
  type NriPlugin,
  type NriPluginOptions,
} from "./plugin.js";
export {
  DEFAULT_NRI_SOCKET_PATH,
  loadNriProtos,
  NRI_PROTO_FILE,
  NRI_SERVICE_NAMES,
} from "./protos.js";
