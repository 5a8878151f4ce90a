/**
 * One unary method: its path and how its messages are serialized. @grpc/proto-loader's
 * method definitions have this shape, so services loaded from .proto files plug in as they are.
 */
export interface MethodDescriptor<Req, Res> {
  /** "/<fully qualified service>/<method>", e.g. "/nri.pkg.api.v1alpha1.Plugin/Configure". */
  readonly path: string;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (value: Res) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
}

export interface MethodName {
  service: string;
  method: string;
}

/** ttrpc sends service and method apart; gRPC-style paths join them. */
export function splitMethodPath(methodPath: string): MethodName {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(methodPath);
  if (!match) throw new Error(`method path ${methodPath} is not "/<service>/<method>"`);
  return { service: match[1]!, method: match[2]! };
}
