/** Sends a `hub.error` frame back to one client. Best effort: the client may already be gone. */
import type { ConnectionsApi } from "./connections";
import { describeError, type Logger } from "./log";
import { errorFrame, serializeFrame } from "./messages";

export async function sendErrorFrame(management: ConnectionsApi, connectionId: string, code: string, message: string, log: Logger): Promise<void> {
  try {
    const response = await management.post(connectionId, management.prepare(serializeFrame(errorFrame(code, message))));
    if (response.status < 200 || response.status >= 300) {
      log.warn("error frame not delivered", { connection_id: connectionId, code, http_status: response.status || undefined, error: response.errorType });
    }
  } catch (err) {
    log.warn("error frame not delivered", { connection_id: connectionId, code, ...describeError(err) });
  }
}
