/** NRI's event numbers this driver uses (enum Event in NRI's pkg/api/api.proto). */
export const NriEvent = {
  RUN_POD_SANDBOX: 1,
  STOP_POD_SANDBOX: 2,
  REMOVE_POD_SANDBOX: 3,
} as const;

export type PodEvent = keyof typeof NriEvent;

/**
 * The ConfigureResponse.events bits for `events`: bit 1 << (event - 1) per event, as NRI's
 * EventMask (pkg/api/event.go). Never 0: the runtime reads 0 as "every event".
 */
export function eventMask(events: readonly number[]): number {
  let mask = 0;
  for (const event of events) {
    if (!Number.isInteger(event) || event < 1 || event > 31) {
      throw new RangeError(`NRI event ${event} has no bit in an event mask`);
    }
    mask |= 1 << (event - 1);
  }
  return mask;
}

/** What the driver subscribes to: pod sandboxes starting, stopping, going away. */
export const SUBSCRIBED_EVENT_MASK = eventMask(Object.values(NriEvent));

/** The pod event an event name or number stands for; undefined for the others. */
export function podEventOf(event: string | number): PodEvent | undefined {
  for (const [name, number] of Object.entries(NriEvent)) {
    if (event === name || event === number) return name as PodEvent;
  }
  return undefined;
}
