/**
 * The local hub's demo page (local/pages/demo.html and demo.js) and the two small endpoints
 * it needs, playing the app backend: issue a token (one room, or several with `rooms`),
 * publish a notification through the queue (to a room, or to a user's channel). Local
 * development only.
 */
import type * as http from "http";
import { describeError, type Logger } from "../core/log";
import type { Notifier } from "../server";
import { splitTarget } from "./apiGateway";
import { readJson, sameOriginRefusal, sendJson, sendPackageFile, statusOfError } from "./http";
import type { LocalHubInfo } from "./index";

interface DemoContext {
  info: LocalHubInfo;
  notifier: Notifier;
  log: Logger;
}

export function handleDemoRequest(request: http.IncomingMessage, response: http.ServerResponse, context: DemoContext): void {
  const json = (status: number, body: unknown) => sendJson(response, status, body);
  const target = splitTarget(request.url);
  if (!target) return json(400, { message: "Bad Request" });
  const refusal = sameOriginRefusal(request, context.info);
  if (refusal) {
    context.log.warn("demo request refused", { reason: refusal, method: request.method });
    return json(403, { message: `Forbidden: ${refusal}` });
  }
  const route = `${request.method} ${target.path}`;
  switch (route) {
    case "GET /demo":
      // "/" is the developer console (local/console.ts); the demo is one of its tabs.
      return sendPackageFile(response, "local/pages/demo.html");
    case "GET /demo/demo.js":
      return sendPackageFile(response, "local/pages/demo.js");
    case "GET /health":
      return json(200, { ok: true });
    case "GET /demo/info":
      // No secrets: what the page connects to and shows, read again so an open tab follows a restart.
      return json(200, { websocketUrl: context.info.websocketUrl, queueUrl: context.info.queueUrl });
    case "POST /demo/token":
    case "POST /demo/publish":
      readJson(request)
        .then(async (body) => {
          if (route === "POST /demo/token") {
            const userId = body.userId as string;
            const token = await context.notifier.issueToken(Array.isArray(body.rooms) ? { userId, rooms: body.rooms as string[] } : { userId, roomId: body.roomId as string });
            return json(200, { token });
          }
          // To one user's channel with toUserId, else to a room; userId is the sender either way.
          const sender = (body.userId as string) ?? null;
          const { messageId } =
            body.toUserId !== undefined
              ? await context.notifier.publish({ toUserId: body.toUserId as string, userId: sender, data: body.data })
              : await context.notifier.publish({ roomId: body.roomId as string, userId: sender, data: body.data });
          return json(200, { messageId });
        })
        .catch((err: unknown) => {
          const status = statusOfError(err);
          if (status === 500) context.log.error("demo request failed", { route, ...describeError(err) });
          json(status, { error: (err as Error).message });
        });
      return;
    default:
      return json(404, { message: "Not Found" });
  }
}
