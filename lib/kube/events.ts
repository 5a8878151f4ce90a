import { randomBytes } from "node:crypto";
import type { KubeClient } from "./client.js";
import { eventsPath } from "./api-paths.js";

/** The object an event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export interface EventRecord {
  regarding: EventSubject;
  type: "Normal" | "Warning";
  /** UpperCamelCase, machine-readable. */
  reason: string;
  /** What happened in the words of the one reporting it (the API keeps at most 1 kB). */
  note: string;
  /** What was done or failed, UpperCamelCase. */
  action: string;
  /** Who reports it: the driver, and this node. */
  reportingController: string;
  reportingInstance: string;
}

const MAX_NOTE_BYTES = 1024;

/** An `events.k8s.io/v1` Event as the API wants it, named after its subject. */
export function eventObject(record: EventRecord, now: Date): Record<string, unknown> {
  return {
    apiVersion: "events.k8s.io/v1",
    kind: "Event",
    metadata: {
      name: `${record.regarding.name}.${randomBytes(8).toString("hex")}`,
      namespace: record.regarding.namespace,
    },
    // MicroTime: RFC 3339 with microseconds.
    eventTime: now.toISOString().replace(/Z$/, "000Z"),
    type: record.type,
    reason: record.reason,
    note: truncateUtf8(record.note, MAX_NOTE_BYTES),
    action: record.action,
    reportingController: record.reportingController,
    reportingInstance: record.reportingInstance,
    regarding: record.regarding,
  };
}

/** Posts the event; events are best effort, so the caller decides what a failure means. */
export async function recordEvent(
  client: KubeClient,
  record: EventRecord,
  now = new Date(),
): Promise<void> {
  await client.request({
    method: "POST",
    path: eventsPath(record.regarding.namespace),
    body: eventObject(record, now),
  });
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let cut = text.slice(0, maxBytes);
  while (Buffer.byteLength(cut) > maxBytes - 3) cut = cut.slice(0, -1);
  return `${cut}…`;
}
