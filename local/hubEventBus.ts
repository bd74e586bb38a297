/**
 * The local hub's hub events (core/hubEvents.ts) in one place: its handlers, and its deliver
 * worker threads through their messages, emit here; the console and `LocalHub.onEvent`
 * listeners read them. A listener that throws is skipped, never the handler's problem.
 */
import type { HubEvent, HubObserver } from "../core/hubEvents";

export type HubEventListener = (event: HubEvent) => void;

export class HubEventBus {
  private readonly listeners = new Set<HubEventListener>();

  /** The observer to give the handlers: each event goes to every listener. */
  readonly emit: HubObserver = (event) => {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A listener's fault must not change what a handler answers.
      }
    }
  };

  /** Adds a listener; returns what removes it. */
  subscribe(listener: HubEventListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}
