import type { WirePodSandbox } from "./protos.js";

/** A pod sandbox as NRI describes it, as plain data. */
export interface PodSandbox {
  /** The runtime's sandbox id. */
  id: string;
  name: string;
  /** The Kubernetes pod UID. */
  uid: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  pid: number;
  ips: string[];
  /** Linux namespaces, e.g. { type: "network", path: "/var/run/netns/cni-..." } */
  namespaces: { type: string; path: string }[];
}

/** Decodes NRI's PodSandbox; a request without one (a runtime bug) gives an empty pod. */
export function toPodSandbox(wire: WirePodSandbox | null): PodSandbox {
  return {
    id: wire?.id ?? "",
    name: wire?.name ?? "",
    uid: wire?.uid ?? "",
    namespace: wire?.namespace ?? "",
    labels: { ...wire?.labels },
    annotations: { ...wire?.annotations },
    runtimeHandler: wire?.runtime_handler ?? "",
    pid: wire?.pid ?? 0,
    ips: [...(wire?.ips ?? [])],
    namespaces: (wire?.linux?.namespaces ?? []).map(({ type, path }) => ({ type, path })),
  };
}

/** Log fields that identify a pod to an operator. */
export function podLogFields(pod: PodSandbox): Record<string, string> {
  return { pod: `${pod.namespace}/${pod.name}`, podUid: pod.uid, sandboxId: pod.id };
}

/**
 * What orders events: the pod UID, which stays while its sandbox is re-created; the
 * sandbox id for sandboxes without one.
 */
export function podKey(pod: PodSandbox): string {
  return pod.uid !== "" ? `uid:${pod.uid}` : `sandbox:${pod.id}`;
}
