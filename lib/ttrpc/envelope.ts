import path from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { findProtoDir, requireProtoFiles } from "../../api/proto/index.js";
import type { Status } from "./status.js";

/** The ttrpc envelope definitions, relative to api/proto. */
export const TTRPC_PROTO_FILES = ["ttrpc/request.proto", "ttrpc/status.proto"] as const;

export interface KeyValue {
  key: string;
  value: string;
}

/** ttrpc.Request, field names as on the wire. */
export interface RequestEnvelope {
  service: string;
  method: string;
  payload: Buffer;
  /** 0: the client set no deadline. */
  timeout_nano: number;
  metadata: KeyValue[];
}

/** ttrpc.Response; a missing status means OK. */
export interface ResponseEnvelope {
  status: Status | null;
  payload: Buffer;
}

export interface Envelope {
  encodeRequest(request: RequestEnvelope): Buffer;
  decodeRequest(bytes: Buffer): RequestEnvelope;
  encodeResponse(response: ResponseEnvelope): Buffer;
  decodeResponse(bytes: Buffer): ResponseEnvelope;
}

// Numbers, not the strings the other protocols use: timeouts are int64 nanoseconds and
// status codes are compared as numbers.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: true,
  arrays: true,
};

const loaded = new Map<string, Envelope>();

/**
 * The ttrpc.Request and ttrpc.Response codecs, read once per directory from the .proto
 * files; without `protoDir` they are looked up from this module's location.
 */
export function loadEnvelope(protoDir?: string): Envelope {
  const dir = path.resolve(protoDir ?? findProtoDir(import.meta.dirname, TTRPC_PROTO_FILES[0]));
  const cached = loaded.get(dir);
  if (cached) return cached;
  const definitions = protoLoader.loadSync(requireProtoFiles(dir, TTRPC_PROTO_FILES), {
    ...LOADER_OPTIONS,
    includeDirs: [dir],
  });
  const request = messageType<RequestEnvelope>(definitions, "ttrpc.Request");
  const response = messageType<ResponseEnvelope>(definitions, "ttrpc.Response");
  const envelope: Envelope = {
    encodeRequest: (value) => request.serialize(value),
    decodeRequest: (bytes) => request.deserialize(bytes),
    encodeResponse: (value) => response.serialize(value),
    decodeResponse: (bytes) => response.deserialize(bytes),
  };
  loaded.set(dir, envelope);
  return envelope;
}

function messageType<T>(
  definitions: protoLoader.PackageDefinition,
  fullName: string,
): protoLoader.MessageTypeDefinition<T, T> {
  const definition = definitions[fullName];
  if (definition === undefined || !("format" in definition) || !("serialize" in definition)) {
    throw new Error(`message ${fullName} is not defined in the .proto files`);
  }
  // With `defaults` and `arrays` every field of the .proto is present when decoding, so
  // the interfaces above describe exactly what the definition produces.
  return definition as unknown as protoLoader.MessageTypeDefinition<T, T>;
}
