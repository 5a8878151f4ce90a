import { status, type handleUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { HealthCheckRequest, HealthCheckResponse, ServingStatus } from "./protos.js";

/**
 * grpc.health.v1.Health Check. `statusOf` answers for a service name ("" is the server as
 * a whole), or undefined for a service this server does not know (NOT_FOUND, as the
 * health checking protocol asks).
 */
export function healthHandlers(
  statusOf: (service: string) => ServingStatus | undefined,
): UntypedServiceImplementation {
  const check: handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    const serving = statusOf(call.request.service);
    if (serving === undefined) {
      callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      return;
    }
    callback(null, { status: serving });
  };
  return { Check: check };
}
