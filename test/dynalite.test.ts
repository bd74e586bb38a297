/**
 * Regression: dynalite (our local DynamoDB) dropped items from a global secondary index when
 * 24-bit hashes of their table keys collided, about 3 in a room of 10,000. local/dynalite.ts
 * fixes that; a room index must return every row of a big room.
 */
import * as crypto from "crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { roomPages } from "../core/tables";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

let dynamo: Dynamo;
beforeAll(async () => {
  dynamo = await startDynamo();
});
afterAll(async () => {
  await dynamo?.stop();
});

it("returns all 10,000 connections of one room from the room index", async () => {
  const ids = Array.from({ length: 10_000 }, () => crypto.randomBytes(10).toString("base64"));
  await seedConnections(dynamo.client, dynamo.connectionsTable, ids.map((connectionId, i) => ({ connectionId, roomId: "huge", userId: `u${i % 100}` })));
  const found = new Set<string>();
  for await (const page of roomPages(dynamo.client, dynamo.connectionsTable, "huge")) for (const c of page.connections) found.add(c.connectionId);
  expect(found.size).toBe(10_000);
});
