/**
 * The token in `Sec-WebSocket-Protocol` (docs/protocol.md#connecting), as API Gateway
 * handles subprotocols: the authorizer and `$connect` get the header as the client sent it,
 * and the handshake's answer names a protocol only when `$connect` returned one, so a client
 * that offered protocols and got none back fails on its own side. First against the
 * emulator with stand-in routes (what it does with any `$connect` answer), then through a
 * local hub with the real handlers (header token, `?token=`, both).
 */
import * as http from "http";
import type * as net from "net";
import * as path from "path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { createLogger } from "../core/log";
import { parseSubprotocols, SUBPROTOCOL, tokenFromRequest } from "../core/rooms";
import { createApiGateway } from "../local/apiGateway";
import { newDevCredentials } from "../local/sigv4";
import { startLocalHub, type LocalHub } from "../local";
import { handshakeStatus, openClient } from "./support/wsClient";

/** What a raw client sees of the handshake's answer: status line and headers, lower-cased. */
function rawHandshake(port: number, path: string, protocolHeader: string | string[] | undefined): Promise<{ status: number; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: "127.0.0.1",
      port,
      path,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        ...(protocolHeader !== undefined ? { "Sec-WebSocket-Protocol": protocolHeader } : {}),
      },
    });
    request.on("upgrade", (response, socket) => {
      socket.destroy();
      resolve({ status: response.statusCode ?? 0, headers: response.headers as Record<string, string> });
    });
    request.on("response", (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, headers: response.headers as Record<string, string> });
    });
    request.on("error", reject);
    request.end();
  });
}

describe("the emulator's subprotocol handshake, with stand-in routes", () => {
  const server = http.createServer();
  let port = 0;
  const seen: { authorizer: unknown[]; connect: WebSocketEvent[]; disconnects: number } = { authorizer: [], connect: [], disconnects: 0 };
  /** What the stand-in `$connect` answers next. */
  let connectAnswer: WebSocketResult = { statusCode: 200 };
  let api: ReturnType<typeof createApiGateway>;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    api = createApiGateway(server, {
      stage: "s",
      apiId: "a",
      region: "us-east-1",
      authorizer: (async (event: unknown) => {
        seen.authorizer.push(event);
        return { principalId: "u", policyDocument: { Version: "2012-10-17", Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: "*" }] }, context: { user_id: "u" } };
      }) as never,
      routes: {
        $connect: async (event) => {
          seen.connect.push(event);
          return connectAnswer;
        },
        $disconnect: async () => {
          seen.disconnects++;
          return { statusCode: 200 };
        },
        $default: async () => ({ statusCode: 200 }),
      },
      credentials: newDevCredentials(),
      log: createLogger({}, () => undefined),
    });
  });
  afterAll(async () => {
    await api.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const url = () => `ws://127.0.0.1:${port}/s`;

  it("hands the header, as the client sent it, to the authorizer and $connect, and answers with the protocol $connect returned", async () => {
    connectAnswer = { statusCode: 200, headers: { "sec-websocket-protocol": SUBPROTOCOL } };
    const client = await openClient(`${url()}?x=1&x=2`, { protocols: [SUBPROTOCOL, "tok.en-1"] });
    expect(client.ws.protocol).toBe(SUBPROTOCOL);
    client.ws.close();
    const connect = seen.connect.at(-1)!;
    // ws spells the header this way; API Gateway keeps the client's spelling.
    expect(connect.headers).toMatchObject({ "Sec-WebSocket-Protocol": `${SUBPROTOCOL},tok.en-1` });
    expect((connect as unknown as { multiValueHeaders: Record<string, string[]> }).multiValueHeaders["Sec-WebSocket-Protocol"]).toEqual([`${SUBPROTOCOL},tok.en-1`]);
    expect((connect as unknown as { multiValueQueryStringParameters: Record<string, string[]> }).multiValueQueryStringParameters.x).toEqual(["1", "2"]);
    expect(seen.authorizer.at(-1)).toMatchObject({ headers: { "Sec-WebSocket-Protocol": `${SUBPROTOCOL},tok.en-1` }, multiValueHeaders: { "Sec-WebSocket-Protocol": [`${SUBPROTOCOL},tok.en-1`] } });
  });

  it("answers no protocol when $connect returned none: a client that offered some fails the handshake itself, and $disconnect still runs", async () => {
    connectAnswer = { statusCode: 200 };
    const raw = await rawHandshake(port, "/s", `${SUBPROTOCOL}, tok`);
    expect(raw.status).toBe(101);
    expect(raw.headers["sec-websocket-protocol"]).toBeUndefined(); // ws alone would have answered with the first one offered

    const before = seen.disconnects;
    await expect(openClient(url(), { protocols: [SUBPROTOCOL, "tok"] })).rejects.toThrow("Server sent no subprotocol");
    await expect.poll(() => seen.disconnects - before, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
  });

  it("passes $connect's value as returned: one the client did not offer, or an answer to a client that offered none, fails on the client's side", async () => {
    connectAnswer = { statusCode: 200, headers: { "Sec-WebSocket-Protocol": "other" } };
    await expect(openClient(url(), { protocols: [SUBPROTOCOL, "tok"] })).rejects.toThrow("Server sent an invalid subprotocol");
    await expect(openClient(url())).rejects.toThrow("Server sent a subprotocol but none was requested");
    // Not a token (it could split the answer's header lines): dropped, never written.
    connectAnswer = { statusCode: 200, headers: { "Sec-WebSocket-Protocol": "a\r\nX-Evil: 1" } };
    const raw = await rawHandshake(port, "/s", "a");
    expect(raw.status).toBe(101);
    expect(raw.headers["x-evil"]).toBeUndefined();
    expect(raw.headers["sec-websocket-protocol"]).toBeUndefined();
  });

  it("refuses a malformed protocol list with 400 before the authorizer runs (ws would only after $connect wrote its row)", async () => {
    connectAnswer = { statusCode: 200 };
    const calls = seen.authorizer.length;
    for (const header of ["", "a,,b", "a b", "a, a", "tok\u00e9n"]) {
      expect((await rawHandshake(port, "/s", header)).status, JSON.stringify(header)).toBe(400);
    }
    expect(seen.authorizer.length).toBe(calls);
  });
});

describe("the one Sec-WebSocket-Protocol parser (core/rooms.ts parseSubprotocols)", () => {
  it("accepts exactly the values ws accepts, with the same protocols; the authorizer reads through it, and reads every valid value as it did before", () => {
    // ws's own parser, the one its handleUpgrade runs; internal, so only this test reads it.
    // By file path: the package's "exports" hide it.
    const wsParse = (require(path.join(path.dirname(require.resolve("ws")), "lib", "subprotocol.js")) as { parse(header: string): Set<string> }).parse;
    // The authorizer's own reading before there was one parser: split, String.trim(), empty entries dropped.
    const before = (value: string) =>
      value
        .split(",")
        .map((protocol) => protocol.trim())
        .filter((protocol) => protocol !== "");
    const piece = fc.constantFrom("notification-hub", "a", "tok.en_-1", "", " ", "\t", ",", ", ", "é", "\u00a0", "\"", "(", "a b");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        // Node's HTTP parser strips a header value's leading and trailing blanks before anyone sees it.
        const value = pieces.join("").trim();
        let expected: string[] | undefined;
        try {
          expected = [...wsParse(value)];
        } catch {
          expected = undefined;
        }
        expect(parseSubprotocols(value), JSON.stringify(value)).toEqual(expected);
        expect(tokenFromRequest({ headers: { "sec-websocket-protocol": value }, queryStringParameters: { token: "q" } }).ok, JSON.stringify(value)).toBe(expected !== undefined);
        if (expected) expect(before(value), JSON.stringify(value)).toEqual(expected);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("the token in Sec-WebSocket-Protocol through a local hub", () => {
  let hub: LocalHub;

  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4 });
  }, 60_000);
  afterAll(async () => {
    await hub?.stop();
  });

  it("connects with [notification-hub, token], names the protocol back, and delivers", async () => {
    const token = await hub.notifier.issueToken({ userId: "hdr", roomId: "sub-room" });
    const client = await openClient(hub.websocketUrl, { protocols: [SUBPROTOCOL, token] });
    expect(client.ws.protocol).toBe(SUBPROTOCOL);
    await hub.notifier.publish({ roomId: "sub-room", data: { type: "t", data: "by header" } });
    expect((await client.next((f) => f.data?.data === "by header")).room_id).toBe("sub-room");
    client.ws.close();
  });

  it("still takes ?token=, and then names no protocol", async () => {
    const token = await hub.notifier.issueToken({ userId: "qs", roomId: "sub-room" });
    const client = await openClient(`${hub.websocketUrl}?token=${token}`);
    expect(client.ws.protocol).toBe("");
    client.ws.close();
  });

  it("with both, the header wins: naming notification-hub means the token is beside it, whatever the query says", async () => {
    const good = await hub.notifier.issueToken({ userId: "both", roomId: "sub-room" });
    const client = await openClient(`${hub.websocketUrl}?token=garbage`, { protocols: [SUBPROTOCOL, good] });
    expect(client.ws.protocol).toBe(SUBPROTOCOL);
    client.ws.close();
    await expect(openClient(`${hub.websocketUrl}?token=${good}`, { protocols: [SUBPROTOCOL, "garbage"] })).rejects.toMatchObject({ status: 403 });
    // The protocol alone, or with two more entries: no token (which one would it be?).
    await expect(openClient(`${hub.websocketUrl}?token=${good}`, { protocols: [SUBPROTOCOL] })).rejects.toMatchObject({ status: 403 });
    await expect(openClient(hub.websocketUrl, { protocols: [SUBPROTOCOL, good, "x"] })).rejects.toMatchObject({ status: 403 });
    // Other protocols, without ours: the query's token counts, and $connect names nothing back, so the client gives up.
    await expect(openClient(`${hub.websocketUrl}?token=${good}`, { protocols: ["graphql-ws"] })).rejects.toThrow("Server sent no subprotocol");
    expect(await handshakeStatus(hub.websocketUrl)).toBe(403);
  });

  it("a protocol list sent as two header lines is one list (RFC 6455 section 11.3.4): the token on the second line connects", async () => {
    const token = await hub.notifier.issueToken({ userId: "lines", roomId: "sub-room" });
    const { port, pathname } = new URL(hub.websocketUrl);
    const answer = await rawHandshake(Number(port), pathname, [SUBPROTOCOL, token]);
    expect(answer.status).toBe(101);
    expect(answer.headers["sec-websocket-protocol"]).toBe(SUBPROTOCOL);
  });

  it("a token too long for API Gateway's 4,096-character URL is refused as ?token= and connects the header way", async () => {
    const rooms = Array.from({ length: 100 }, (_, i) => `long-room-${String(i).padStart(3, "0")}/alerts/of/the/night-shift`);
    const long = await hub.notifier.issueToken({ userId: "long", rooms });
    expect(long.length).toBeGreaterThan(4096);
    expect(await handshakeStatus(`${hub.websocketUrl}?token=${long}`)).toBe(414);
    const client = await openClient(hub.websocketUrl, { protocols: [SUBPROTOCOL, long] });
    expect(client.ws.protocol).toBe(SUBPROTOCOL);
    client.ws.close();
  });
});
