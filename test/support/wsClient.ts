/**
 * WebSocket clients as a browser app meets the hub: open with a token, collect frames, wait
 * for one, see the close code or the handshake's refusal status. Used by the tests and bench/.
 */
import { WebSocket } from "ws";

/** A frame as received: a notification, or API Gateway's own `{ message }` (throttling, errors). */
export interface Frame {
  id?: string;
  room_id?: string | null;
  user_id?: string | null;
  origin?: string;
  message?: string;
  data?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- whatever the publisher sent
}

export interface WsClient {
  ws: WebSocket;
  /** Every frame so far, parsed, in order of arrival. */
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  /** The ids of the frames so far. */
  ids(): string[];
  /** The first frame (already received or still to come) that matches, or a rejection after timeoutMs. */
  next(predicate?: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
}

export interface OpenOptions {
  headers?: Record<string, string>;
  /** Subprotocols to offer, as a browser's `new WebSocket(url, protocols)`: `["notification-hub", token]`. */
  protocols?: string[];
  /** Called with each frame and when it arrived (ms), before it is stored; bench/ times deliveries with it. */
  onFrame?: (frame: Frame, at: number) => void;
  /** Keep frames in `frames` (default true); bench/'s thousands of clients turn it off. */
  keepFrames?: boolean;
  /** Offer permessage-deflate as browsers do (ws's default, true); bench/ turns it off. */
  perMessageDeflate?: boolean;
}

/** Opens a client; a refused handshake rejects with an Error carrying `status` (401, 403, 404...). */
export function openClient(url: string, options: OpenOptions = {}): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    // An option given as undefined would override ws's defaults: pass only what was set.
    const ws = new WebSocket(url, options.protocols ?? [], {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.perMessageDeflate !== undefined ? { perMessageDeflate: options.perMessageDeflate } : {}),
    });
    const frames: Frame[] = [];
    const waiters: { predicate: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on("close", (code, reason) => done({ code, reason: reason.toString() })));
    ws.on("message", (data) => {
      const at = Date.now();
      const frame = JSON.parse(data.toString()) as Frame;
      options.onFrame?.(frame, at);
      if (options.keepFrames !== false) frames.push(frame);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(frame)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(frame);
        }
      }
    });
    ws.on("open", () =>
      resolve({
        ws,
        frames,
        closed,
        ids: () => frames.map((f) => f.id ?? ""),
        next: (predicate = () => true, timeoutMs = 10_000) =>
          new Promise((done, fail) => {
            const existing = frames.find(predicate);
            if (existing) return done(existing);
            const timer = setTimeout(() => fail(new Error("no matching frame in time")), timeoutMs);
            waiters.push({ predicate, resolve: (f) => (clearTimeout(timer), done(f)) });
          }),
      }),
    );
    ws.on("unexpected-response", (_request, response) => reject(Object.assign(new Error(`refused ${response.statusCode}`), { status: response.statusCode })));
    ws.on("error", (err) => reject(err));
  });
}

/** Anything that hands out tokens and has a WebSocket URL: a LocalHub, bench's hub process. */
export interface TokenSource {
  websocketUrl: string;
  notifier: { issueToken(input: { userId: string; roomId: string; ttlSeconds?: number }): Promise<string> };
}

/** Issues a token for (user, room) and connects with it. */
export async function connectAs(hub: TokenSource, userId: string, roomId: string, options?: OpenOptions): Promise<WsClient> {
  return openClient(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId, roomId })}`, options);
}

/** The handshake's status: 101 when it opened (then closed at once), else the refusal's status (-1: no response). */
export async function handshakeStatus(url: string, headers?: Record<string, string>): Promise<number> {
  try {
    const client = await openClient(url, { headers });
    client.ws.close();
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

/** Closes every client and waits for each close (terminating a stuck one after 5 s). */
export async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once("close", () => resolve());
          ws.close();
          setTimeout(() => (ws.terminate(), resolve()), 5_000).unref();
        }),
    ),
  );
}
