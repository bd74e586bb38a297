/**
 * Every code a `hub.error` frame can carry: one table, read by the handlers (which may only send
 * these: `errorFrame` takes a {@link HubErrorCode}), by the frames (`temporary` goes in each
 * `hub.error`), and by the browser client, whose copy (`client/codes.mjs`, plain JavaScript: the
 * client has no build step and may not import this file) `test/codes.test.ts` holds to this one
 * exactly. Change a code here, then there; docs/protocol.md "Error codes" lists them for app authors.
 *
 * - `temporary`: the same request, sent again unchanged, may succeed later (a passing failure of
 *   the hub or of a race); a permanent one needs the request or the connection's state to change.
 * - `partWay`: the request failed part way, so what it changes may or may not have changed
 *   (a refusal without it was made before anything was written).
 * - `routes`: the requests that can be answered with it (the client matches a refusal to the one
 *   request on the wire that can get it).
 */

export type HubRoute = "subscribe" | "unsubscribe" | "resume" | "sendMessage" | "presence" | "occupancy" | "$default";

export interface HubErrorCodeInfo {
  readonly temporary: boolean;
  readonly partWay: boolean;
  readonly routes: readonly HubRoute[];
}

export const HUB_ERROR_CODES = {
  invalid_json: { temporary: false, partWay: false, routes: ["sendMessage", "resume", "$default"] },
  unknown_action: { temporary: false, partWay: false, routes: ["$default"] },
  unknown_connection: { temporary: true, partWay: false, routes: ["subscribe", "unsubscribe", "resume", "sendMessage", "presence", "occupancy"] },
  forbidden: { temporary: false, partWay: false, routes: ["subscribe", "sendMessage"] },
  invalid_subscribe: { temporary: false, partWay: false, routes: ["subscribe", "unsubscribe"] },
  too_many_rooms: { temporary: false, partWay: false, routes: ["subscribe"] },
  subscribe_failed: { temporary: true, partWay: true, routes: ["subscribe"] },
  unsubscribe_failed: { temporary: true, partWay: true, routes: ["unsubscribe"] },
  invalid_resume: { temporary: false, partWay: false, routes: ["resume"] },
  not_subscribed: { temporary: false, partWay: false, routes: ["resume", "presence", "occupancy"] },
  streams_off: { temporary: false, partWay: false, routes: ["resume"] },
  resume_failed: { temporary: true, partWay: true, routes: ["resume"] },
  resume_throttled: { temporary: true, partWay: false, routes: ["resume"] },
  invalid_body: { temporary: false, partWay: false, routes: ["sendMessage"] },
  missing_data: { temporary: false, partWay: false, routes: ["sendMessage"] },
  invalid_message: { temporary: false, partWay: false, routes: ["sendMessage"] },
  invalid_data: { temporary: false, partWay: false, routes: ["sendMessage"] },
  message_too_large: { temporary: false, partWay: false, routes: ["sendMessage"] },
  delivery_failed: { temporary: true, partWay: true, routes: ["sendMessage"] },
  delivery_incomplete: { temporary: true, partWay: true, routes: ["sendMessage"] },
  invalid_presence: { temporary: false, partWay: false, routes: ["presence", "occupancy"] },
  presence_failed: { temporary: true, partWay: false, routes: ["presence", "occupancy"] },
} as const satisfies Record<string, HubErrorCodeInfo>;

export type HubErrorCode = keyof typeof HUB_ERROR_CODES;

/** Whether a refusal with `code` may pass if the same request is sent again. */
export function isTemporary(code: HubErrorCode): boolean {
  return HUB_ERROR_CODES[code].temporary;
}
