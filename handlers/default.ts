/** `$default`: any frame no route matched. The sender learns why; nobody else sees it. */
import type { ConnectionsApi } from "../core/connections";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import type { Logger } from "../core/log";
import { sendErrorFrame } from "../core/reply";
import { clientMessagesAllowed, lambdaSource, managementFrom, type HandlerSource } from "./dependencies";

export interface DefaultDeps {
  management: ConnectionsApi;
  log: Logger;
  /** Whether the sendMessage route exists, to give the right hint. */
  clientMessagesAllowed: boolean;
}

function isJson(body: string | undefined): boolean {
  try {
    JSON.parse(body ?? "");
    return true;
  } catch {
    return false;
  }
}

export function createDefaultHandler(deps: DefaultDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    // No keep-alive here: {"action":"ping"} has a route of its own that API Gateway answers
    // (core/keepAlive.ts), so it never reaches this Lambda, from old clients or new.
    const hint =
      'the actions are "subscribe" and "unsubscribe" ({"action":"subscribe","room_id":...}), "resume" ({"action":"resume","room_id":...,"after":N})' +
      (deps.clientMessagesAllowed ? ' and "sendMessage" ({"action":"sendMessage","data":...})' : "; this hub does not accept messages from clients");
    // API Gateway routes frames that are not JSON here too; say which mistake it was.
    const code = isJson(event.body) ? "unknown_action" : "invalid_json";
    deps.log.info("frame matched no route", { connection_id: connectionId, code });
    await sendErrorFrame(deps.management, connectionId, code, code === "invalid_json" ? `the message is not JSON; ${hint}` : hint, deps.log);
    return { statusCode: 400, body: code };
  };
}

export function defaultFromEnvironment(source: HandlerSource = lambdaSource("default")) {
  return createDefaultHandler({
    management: managementFrom(source),
    log: source.log,
    clientMessagesAllowed: clientMessagesAllowed(source),
  });
}
