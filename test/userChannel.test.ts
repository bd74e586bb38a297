/**
 * User channels (docs/protocol.md#rooms-and-user-channels): `to_user_id` on the queue, publishToUser in the SDK.
 * What the queue body and the SDK accept and refuse; the end-to-end half is test/userChannelHub.test.ts.
 */
import { describe, expect, it, vi } from "vitest";
import type { SendMessageBatchCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { parseQueueBody } from "../core/chunks";
import { buildPublishBody, MAX_ID_LENGTH, parsePublishBody } from "../core/messages";
import { userChannel } from "../core/rooms";
import { main } from "../cli";
import { createNotifier } from "../server";

const parse = (body: Record<string, unknown>) => parsePublishBody(body, "m-1");

describe("to_user_id in a queue body", () => {
  it("becomes a notification to the user's channel, with user_id as the sender", () => {
    const parsed = parse({ to_user_id: "42", user_id: "billing", data: { type: "export.ready" } });
    expect(parsed).toEqual({ ok: true, value: { id: "m-1", roomId: "user:42", userId: "billing", origin: "app", data: { type: "export.ready" } } });
    // Numbers are ids as in the seed: 42 and "42" are one user.
    expect(parse({ to_user_id: 42, data: 1 })).toMatchObject({ ok: true, value: { roomId: userChannel("42"), userId: null } });
  });

  it("takes exactly one of room_id and to_user_id, and names both keys when it refuses", () => {
    expect(parse({ room_id: "acme", to_user_id: "42", data: 1 })).toEqual({ ok: false, code: "conflicting_target", reason: "pass room_id or to_user_id, not both" });
    const neither = parse({ user_id: "42", data: 1 });
    expect(neither).toMatchObject({ ok: false, code: "missing_room_id" });
    expect(!neither.ok && neither.reason).toMatch(/room_id is required \(or to_user_id/);
    // null is absent, as the seed's user_id: null is.
    expect(parse({ room_id: null, to_user_id: "42", data: 1 })).toMatchObject({ ok: true, value: { roomId: "user:42" } });
  });

  it("refuses a room_id in the reserved user: space, pointing to to_user_id", () => {
    const parsed = parse({ room_id: "user:42", data: 1 });
    expect(parsed).toMatchObject({ ok: false, code: "invalid_room_id" });
    expect(!parsed.ok && parsed.reason).toMatch(/room_id must not start with "user:".*to_user_id/);
  });

  it("checks to_user_id as an id, and keeps its channel within the id limit", () => {
    for (const bad of ["", "a\u0000b", true, {}]) expect(parse({ to_user_id: bad, data: 1 })).toMatchObject({ ok: false, code: "invalid_to_user_id" });
    const longest = "u".repeat(MAX_ID_LENGTH - "user:".length);
    expect(parse({ to_user_id: longest, data: 1 })).toMatchObject({ ok: true });
    const tooLong = parse({ to_user_id: longest + "u", data: 1 });
    expect(tooLong).toMatchObject({ ok: false, code: "invalid_to_user_id" });
    expect(!tooLong.ok && tooLong.reason).toMatch(/to_user_id is longer than 251 characters/);
  });

  it("is read by the deliver path's queue parser like a room publish", () => {
    expect(parseQueueBody(JSON.stringify({ to_user_id: "7", data: "hi" }), "m-2")).toMatchObject({ ok: true, value: { notification: { roomId: "user:7", id: "m-2" } } });
  });
});

describe("buildPublishBody and the SDK", () => {
  it("writes to_user_id for a user and room_id for a room, the SDK's keys named in its errors", () => {
    expect(JSON.parse(buildPublishBody({ toUserId: "42", userId: "app", data: 1 }))).toEqual({ to_user_id: "42", user_id: "app", data: 1 });
    expect(JSON.parse(buildPublishBody({ roomId: "acme", data: 1 }))).toEqual({ room_id: "acme", user_id: null, data: 1 });
    expect(() => buildPublishBody({ roomId: "acme", toUserId: "42", data: 1 })).toThrow("publish: pass roomId or toUserId, not both");
    expect(() => buildPublishBody({ data: 1 })).toThrow("publish: roomId is required (or toUserId to publish to one user's channel)");
    expect(() => buildPublishBody({ roomId: "user:42", data: 1 })).toThrow(/roomId must not start with "user:".*toUserId/);
  });

  /** An SQS stand-in that records every body it is sent. */
  function recordingSqs() {
    const bodies: string[] = [];
    const client = {
      async send(command: SendMessageCommand | SendMessageBatchCommand) {
        const input = command.input as { MessageBody?: string; Entries?: { Id: string; MessageBody: string }[] };
        if (input.Entries) {
          bodies.push(...input.Entries.map((e) => e.MessageBody));
          return { Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })), Failed: [] };
        }
        bodies.push(input.MessageBody!);
        return { MessageId: `m-${bodies.length}` };
      },
    };
    return { client: client as unknown as SQSClient, bodies };
  }

  it("publishToUser sends {to_user_id, user_id: senderId, data}; publishBatch mixes rooms and users", async () => {
    const sqs = recordingSqs();
    const notifier = createNotifier({ queueUrl: "http://queue.invalid/q" });
    // The SDK's client is built inside createNotifier: swap its send for the recorder.
    const { SQSClient: Client } = await import("@aws-sdk/client-sqs");
    const original = Client.prototype.send;
    Client.prototype.send = sqs.client.send as never;
    try {
      expect(await notifier.publishToUser({ userId: 42, senderId: "billing", data: { type: "export.ready" } })).toEqual({ messageId: "m-1" });
      expect(await notifier.publishToUser({ userId: "43", data: "x" })).toEqual({ messageId: "m-2" });
      await notifier.publishBatch([{ roomId: "acme", data: 1 }, { toUserId: "42", userId: "app", data: 2 }]);
      await expect(notifier.publishToUser({ data: 1 } as never)).rejects.toThrow("publishToUser: userId (the recipient) is required");
      await expect(notifier.publishToUser({ userId: "", data: 1 })).rejects.toThrow("publishToUser: userId must not be empty");
      await expect(notifier.publishBatch([{ roomId: "acme", data: 1 }, { roomId: "user:9", data: 1 }])).rejects.toThrow(/^publishBatch\[1\]: publish: roomId must not start/);
    } finally {
      Client.prototype.send = original;
    }
    expect(sqs.bodies.map((b) => JSON.parse(b))).toEqual([
      { to_user_id: 42, user_id: "billing", data: { type: "export.ready" } },
      { to_user_id: "43", user_id: null, data: "x" },
      { room_id: "acme", user_id: null, data: 1 },
      { to_user_id: "42", user_id: "app", data: 2 },
    ]);
  });
});

describe("CLI flags for user channels (in process: refused before any hub is needed)", () => {
  async function refused(argv: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = "";
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    try {
      return { code: await main(argv), stderr };
    } finally {
      spy.mockRestore();
    }
  }

  it("publish takes exactly one of --room and --to-user; history refuses --room user:U and names --user", async () => {
    expect(await refused(["publish", "--room", "r", "--to-user", "u", "--data", "1"])).toEqual({
      code: 2,
      stderr: "notification-hub publish: pass --room or --to-user, not both (see notification-hub publish --help)\n",
    });
    expect((await refused(["publish", "--data", "1"])).stderr).toMatch(/--room is required \(or --to-user U for one user's channel\)/);
    expect((await refused(["publish", "--to-user", "u".repeat(252), "--data", "1"])).stderr).toMatch(/--to-user is longer than 251 characters/);
    expect(await refused(["history", "--room", "user:u"])).toEqual({
      code: 2,
      stderr: 'notification-hub history: --room must not start with "user:" (reserved for user channels; use --user U) (see notification-hub history --help)\n',
    });
  });
});
