/**
 * Revocation as an app backend meets it (docs/protocol.md#tokens), on the local hub with
 * real `ws` connections: `revokeToken({ userId })` closes every connection of the user
 * (several rooms, several tabs, both token forms, rooms subscribed after connecting, rows
 * from before user channels) and nobody else's; its tokens stay refused after a re-issue;
 * the second look spares a connection made with a token issued after the revocation;
 * `revokeToken({ userId, roomId })` ends only the seed token of that room.
 */
import { BatchWriteItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { membershipKey, userChannel } from "../core/rooms";
import { getConnection, roomPages } from "../core/tables";
import { notifierOptionsFor } from "../local/stateFile";
import { createNotifier, type IssueTokenInput } from "../server";
import { sharedTestHub } from "./support/sharedHub";
import { handshakeStatus, openClient, type Frame, type WsClient } from "./support/wsClient";

const shared = sharedTestHub();

type Scope = { roomId: string } | { rooms: string[] };
const token = (userId: string, scope: Scope) => shared.hub.notifier.issueToken({ userId, ...scope } as IssueTokenInput);
const url = (value: string) => `${shared.hub.websocketUrl}?token=${value}`;

async function open(value: string): Promise<WsClient> {
  const client = await openClient(url(value));
  shared.clients.push(client);
  return client;
}

/** Whether a client's socket is still open (its close event has not come). */
const isOpen = (client: WsClient) => client.ws.readyState === client.ws.OPEN;

const control = (frame: Frame) => frame.data as { type: string; data: Record<string, unknown> };

/** Subscribes and waits for the hub's answer to it. */
async function subscribe(client: WsClient, roomId: string): Promise<void> {
  const from = client.frames.length;
  client.ws.send(JSON.stringify({ action: "subscribe", room_id: roomId }));
  const answer = await client.next((f) => client.frames.indexOf(f) >= from && f.user_id === null && (control(f)?.type === "hub.subscribed" || control(f)?.type === "hub.error"));
  expect(control(answer)).toMatchObject({ type: "hub.subscribed", data: { room_id: roomId } });
}

/** The connection ids of a user, read from their user channel as revocation reads them. */
async function connectionIdsOf(userId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of roomPages(shared.db, shared.hub.connectionsTableName, userChannel(userId))) ids.push(...page.connections.map((c) => c.connectionId));
  return ids;
}

describe("revokeToken({ userId })", () => {
  it("closes every connection of the user in several rooms and tabs, of both token forms, and nobody else's; its tokens stay refused after a re-issue", async () => {
    const seedR1 = await token("ann", { roomId: "r1" });
    const seedR2 = await token("ann", { roomId: "r2" });
    const grants = await token("ann", { rooms: ["team/*", "r1"] });
    const ann = [await open(seedR1), await open(seedR1), await open(seedR2), await open(grants), await open(grants)];
    await subscribe(ann[3], "team/a");
    const bystanders = [await open(await token("ben", { roomId: "r1" })), await open(await token("ben", { rooms: ["team/*"] }))];

    const { closedConnections } = await shared.hub.notifier.revokeToken({ userId: "ann" });
    expect(closedConnections).toBe(ann.length);
    await Promise.all(ann.map((client) => client.closed));
    expect(bystanders.every(isOpen)).toBe(true);
    expect(await connectionIdsOf("ann")).toEqual([]);

    // Re-issued tokens work; every token from before the revocation stays refused.
    const fresh = [await token("ann", { roomId: "r1" }), await token("ann", { rooms: ["team/*", "r1"] })];
    for (const value of fresh) expect(await handshakeStatus(url(value))).toBe(101);
    for (const value of [seedR1, seedR2, grants]) expect(await handshakeStatus(url(value))).toBe(403);
  });

  it("closes a connection that subscribed to rooms after connecting, and leaves none of its items", async () => {
    const client = await open(await token("cyd", { rooms: ["proj/*"] }));
    await subscribe(client, "proj/a");
    await subscribe(client, "proj/b");
    const [id] = await connectionIdsOf("cyd");
    expect(await revokeCount("cyd")).toBe(1);
    await client.closed;
    const keys = [id, ...["proj/a", "proj/b", userChannel("cyd")].map((room) => membershipKey(id, room))];
    for (const key of keys) {
      const item = await shared.db.send(new GetItemCommand({ TableName: shared.hub.connectionsTableName, Key: { connection_id: { S: key } }, ConsistentRead: true }));
      expect(item.Item, key).toBeUndefined();
    }
  });

  it("closes a connection whose row predates user channels (found through its seed token's room)", async () => {
    const client = await open(await token("dee", { roomId: "legacy" }));
    const [id] = await connectionIdsOf("dee");
    const row = (await getConnection(shared.db, shared.hub.connectionsTableName, id))!;
    // Rewrite it as the seed wrote it: room_id on the row, no memberships, no user channel.
    await shared.db.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [shared.hub.connectionsTableName]: [
            { DeleteRequest: { Key: { connection_id: { S: membershipKey(id, userChannel("dee")) } } } },
            { DeleteRequest: { Key: { connection_id: { S: membershipKey(id, "legacy") } } } },
            {
              PutRequest: {
                Item: {
                  connection_id: { S: id },
                  room_id: { S: "legacy" },
                  user_id: { S: "dee" },
                  generation: { S: row.generation! },
                  connected_at: { N: String(row.connectedAt) },
                  expires_at: { N: String(row.expiresAt) },
                },
              },
            },
          ],
        },
      }),
    );
    expect(await connectionIdsOf("dee")).toEqual([]);
    expect(await revokeCount("dee")).toBe(1);
    await client.closed;
  });

  it("spares, on its second look, a connection made with a token issued after the revocation", async () => {
    // A second look long enough to reconnect in: the client below does so as soon as it is closed.
    const backend = createNotifier({ ...notifierOptionsFor(shared.hub), bcryptCost: 4, revokeRecheckMs: 1_500 });
    const old = await open(await token("eve", { rooms: ["ops"] }));
    const revoked = backend.revokeToken({ userId: "eve" });
    await old.closed;
    const reconnected = await open(await token("eve", { rooms: ["ops"] }));
    expect(await revoked).toEqual({ closedConnections: 1 });
    expect(isOpen(reconnected)).toBe(true);
    expect(await connectionIdsOf("eve")).toHaveLength(1);
  });
});

describe("revokeToken({ userId, roomId })", () => {
  it("closes only the connections made with that room's seed token: a rooms token subscribed to the room stays", async () => {
    const seed = await open(await token("fay", { roomId: "r9" }));
    const grants = await open(await token("fay", { rooms: ["r9", "r8"] }));
    await subscribe(grants, "r9");
    const elsewhere = await open(await token("fay", { roomId: "r8" }));
    expect(await shared.hub.notifier.revokeToken({ userId: "fay", roomId: "r9" })).toEqual({ closedConnections: 1 });
    await seed.closed;
    expect(isOpen(grants) && isOpen(elsewhere)).toBe(true);
    // A seed connection that left its room is still that token's: found through the user channel.
    const left = await open(await token("fay", { roomId: "r7" }));
    const from = left.frames.length;
    left.ws.send(JSON.stringify({ action: "unsubscribe", room_id: "r7" }));
    await left.next((f) => left.frames.indexOf(f) >= from && control(f)?.type === "hub.unsubscribed");
    expect(await shared.hub.notifier.revokeToken({ userId: "fay", roomId: "r7" })).toEqual({ closedConnections: 1 });
    await left.closed;
    expect(isOpen(grants) && isOpen(elsewhere)).toBe(true);
    await expect(shared.hub.notifier.revokeToken({ userId: "fay", roomId: undefined })).rejects.toThrow("revokeToken: roomId is undefined; omit it to revoke every token of the user");
  });
});

async function revokeCount(userId: string): Promise<number> {
  return (await shared.hub.notifier.revokeToken({ userId })).closedConnections;
}
