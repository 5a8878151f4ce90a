import { once } from "node:events";

/** Resolves on the first SIGTERM (the kubelet stopping the pod) or SIGINT (Ctrl-C). */
export async function shutdownSignal(): Promise<string> {
  const [signal] = (await Promise.race([once(process, "SIGTERM"), once(process, "SIGINT")])) as [
    string,
  ];
  return signal;
}
