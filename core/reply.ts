/** Sends a `hub.error` frame back to one client. Best effort: the client may already be gone. */
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { describeError, type Logger } from "./log";
import { errorFrame, serializeFrame } from "./messages";

export async function sendErrorFrame(
  management: ApiGatewayManagementApiClient,
  connectionId: string,
  code: string,
  message: string,
  log: Logger,
): Promise<void> {
  try {
    const data = Buffer.from(serializeFrame(errorFrame(code, message)), "utf8");
    await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
  } catch (err) {
    log.warn("error frame not delivered", { connection_id: connectionId, code, ...describeError(err) });
  }
}
