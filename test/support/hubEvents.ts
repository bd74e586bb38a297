/** Hub events (core/hubEvents.ts) a test can read back, instead of matching log text. */
import type { HubEvent, HubEventType } from "../../core/hubEvents";

export type EventOf<T extends HubEventType> = Extract<HubEvent, { type: T }>;

export function recordingObserver() {
  const events: HubEvent[] = [];
  return {
    /** Give it as a handler's `observe`, or to `LocalHub.onEvent`. */
    observe: (event: HubEvent) => void events.push(event),
    events,
    /** The events of one type, in the order they came. */
    ofType: <T extends HubEventType>(type: T): EventOf<T>[] => events.filter((e): e is EventOf<T> => e.type === type),
  };
}
