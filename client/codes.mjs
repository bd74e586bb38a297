// @ts-check
/**
 * Error codes and the one error class of the browser client.
 *
 * HUB_ERROR_CODES is a copy of the hub's table (core/errorCodes.ts): this module runs in
 * browsers with no build step and cannot import TypeScript, and the hub must not import from
 * client/. test/codes.test.ts holds the copy equal to the original, key for key and in order.
 * The rule the client lives by (docs/protocol.md "The browser client", Errors):
 *   temporary  the same request may pass if sent again: a re-join nobody awaits is retried
 *   partWay    the request may have run part way: the hub's membership is not known
 *   routes     the requests that can be refused with it: a refusal answers the request on the
 *              wire only when that request can get it (otherwise it is a late one of another)
 */

/** @typedef {import("./index.mjs").HubRoute} HubRoute */
/** @typedef {import("./index.mjs").HubErrorData} HubErrorData */
/** @typedef {{ readonly temporary: boolean, readonly partWay: boolean, readonly routes: readonly HubRoute[] }} HubErrorCodeInfo */

/** @type {typeof import("./index.mjs").HUB_ERROR_CODES} */
export const HUB_ERROR_CODES = freeze({
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
});

/**
 * Codes the client gives a join() (or a send()) itself, when the page or the socket gave up
 * before the hub answered: `closed` (close(), or the socket ended with reconnect: false), `left`
 * (leave() before the answer), `timeout` (no answer in joinTimeoutMs, or sendTimeoutMs for a
 * send: the request may still run).
 */
/** @type {typeof import("./index.mjs").CLIENT_ERROR_CODES} */
export const CLIENT_ERROR_CODES = freeze({
  closed: { temporary: false },
  left: { temporary: false },
  timeout: { temporary: true },
});

/**
 * @template T
 * @param {T} table
 * @returns {T}
 */
function freeze(table) {
  for (const info of Object.values(/** @type {Record<string, { routes?: readonly string[] }>} */ (table))) {
    if (info.routes) Object.freeze(info.routes);
    Object.freeze(info);
  }
  return Object.freeze(table);
}

/** @param {unknown} code @returns {HubErrorCodeInfo | undefined} */
function hubCode(code) {
  return typeof code === "string" && Object.hasOwn(HUB_ERROR_CODES, code) ? HUB_ERROR_CODES[/** @type {keyof typeof HUB_ERROR_CODES} */ (code)] : undefined;
}

/**
 * Whether a refusal with `code` may pass if the same request goes again; false for a code
 * neither table knows (a newer hub's: its frame says itself, see HubError).
 * @param {unknown} code
 */
export function isTemporary(code) {
  if (typeof code !== "string") return false;
  if (Object.hasOwn(CLIENT_ERROR_CODES, code)) return CLIENT_ERROR_CODES[/** @type {keyof typeof CLIENT_ERROR_CODES} */ (code)].temporary;
  return hubCode(code)?.temporary ?? false;
}

/** Whether the request refused with `code` may have changed something before it failed. @param {unknown} code */
export function isPartWay(code) {
  return hubCode(code)?.partWay ?? false;
}

/**
 * Whether `code` can be the answer to a request of this route.
 * @param {HubRoute} route
 * @param {unknown} code
 */
export function answers(route, code) {
  return hubCode(code)?.routes.includes(route) ?? false;
}

/**
 * What join() rejects with: the hub's refusal (`hubError`: the `hub.error` data) or the
 * client's own giving up (CLIENT_ERROR_CODES). `roomId` is `room`, under the name join()'s
 * errors always had.
 */
export class HubError extends Error {
  /** @type {"HubError"} */
  name = "HubError";
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ room?: string, hubError?: HubErrorData }} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.code = code;
    // A newer hub's frame says whether its code is temporary; the table answers for older ones.
    const said = details.hubError?.temporary;
    this.temporary = typeof said === "boolean" ? said : isTemporary(code);
    /** @type {string | undefined} */
    this.room = details.room;
    /** @type {string | undefined} */
    this.roomId = details.room;
    if (details.hubError) this.hubError = details.hubError;
  }
}
