/**
 * A WebSocket client written by hand on a TCP socket, for what `ws` will not do: send a
 * frame in the same write as the upgrade request, or stop reading altogether.
 */
import * as crypto from "crypto";
import * as net from "net";

/** A masked text frame, as a client must send it. */
export function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  if (payload.length >= 126) throw new RangeError("clientTextFrame: keep test frames under 126 bytes");
  const mask = crypto.randomBytes(4);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
}

export interface RawClient {
  socket: net.Socket;
  /** Everything read so far, as latin1 text (the 101 response, then server frames). */
  received(): string;
  closed: Promise<void>;
}

/** Opens `ws://host:port/path?query` by hand; `firstFrame` goes out in the same write as the request. */
export function rawUpgrade(websocketUrl: string, query: string, firstFrame?: Buffer): Promise<RawClient> {
  const url = new URL(websocketUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname.replace(/^\[|\]$/g, ""));
    let text = "";
    const closed = new Promise<void>((done) => socket.on("close", () => done()));
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.includes("\r\n\r\n")) {
        if (text.startsWith("HTTP/1.1 101")) resolve({ socket, received: () => text, closed });
        else reject(new Error(text.split("\r\n")[0]));
      }
    });
    socket.on("connect", () => {
      const request =
        `GET ${url.pathname}?${query} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      socket.write(Buffer.concat([Buffer.from(request), firstFrame ?? Buffer.alloc(0)]));
    });
  });
}

/** Sends one raw HTTP request (any request line) and resolves with the status line, or "closed". */
export function rawHttp(port: number, host: string, request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    let text = "";
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.includes("\r\n")) {
        resolve(text.split("\r\n")[0]);
        socket.destroy();
      }
    });
    socket.on("close", () => resolve(text.split("\r\n")[0] || "closed"));
    socket.on("connect", () => socket.write(request));
  });
}
