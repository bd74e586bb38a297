/** Sends a frame about its own request (`hub.error`, `hub.resumed`) back to one client. Best effort: the client may already be gone. */
import type { ConnectionsApi } from "./connections";
import type { WebSocketResult } from "./events";
import type { HubErrorCode } from "./errorCodes";
import { describeError, type Logger } from "./log";
import { errorFrame, serializeFrame, type ControlFrame, type ErrorAbout } from "./messages";

/** True when the frame reached the connection. */
export async function sendControlFrame(management: ConnectionsApi, connectionId: string, frame: ControlFrame, log: Logger): Promise<boolean> {
  const type = frame.data.type;
  const code = (frame.data.data as { code?: string })?.code;
  try {
    const response = await management.post(connectionId, management.prepare(serializeFrame(frame)));
    if (response.status >= 200 && response.status < 300) return true;
    log.warn("control frame not delivered", { connection_id: connectionId, type, code, http_status: response.status || undefined, error: response.errorType });
  } catch (err) {
    log.warn("control frame not delivered", { connection_id: connectionId, type, code, ...describeError(err) });
  }
  return false;
}

export async function sendErrorFrame(management: ConnectionsApi, connectionId: string, code: HubErrorCode, message: string, log: Logger, about?: ErrorAbout): Promise<void> {
  await sendControlFrame(management, connectionId, errorFrame(code, message, about), log);
}

/**
 * A route's refusal: logs `{what} rejected` with the code (never the frame), answers the client
 * with `hub.error`, and gives the route's result.
 */
export function refuser(deps: { management: ConnectionsApi; log: Logger }, connectionId: string, what: string) {
  return async (code: HubErrorCode, message: string, statusCode = 400, about?: { room_id?: string }): Promise<WebSocketResult> => {
    deps.log.info(`${what} rejected`, { connection_id: connectionId, code });
    await sendErrorFrame(deps.management, connectionId, code, message, deps.log, about);
    return { statusCode, body: code };
  };
}
