/**
 * ttrpc (github.com/containerd/ttrpc): containerd's lightweight RPC over a byte stream,
 * unary calls only. General; nothing here knows about NRI.
 */
export { ByteQueue } from "./byte-queue.js";
export { TtrpcClient, type CallOptions } from "./client.js";
export {
  loadEnvelope,
  TTRPC_PROTO_FILES,
  type Envelope,
  type KeyValue,
  type RequestEnvelope,
  type ResponseEnvelope,
} from "./envelope.js";
export {
  decodeHeader,
  encodeHeader,
  encodeMessage,
  MAX_MESSAGE_LENGTH,
  MESSAGE_HEADER_LENGTH,
  MessageFlags,
  MessageReader,
  MessageType,
  type MessageHeader,
  type ReadItem,
} from "./framing.js";
export { splitMethodPath, type MethodDescriptor, type MethodName } from "./method.js";
export { ServerConnection, TtrpcServer, type CallContext, type Handler } from "./server.js";
export { Code, codeName, statusOf, TtrpcError, type Status } from "./status.js";
