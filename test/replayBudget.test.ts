/**
 * The replay budget of one connection (core/replayBudget.ts, docs/protocol.md#resume), on
 * dynalite: concurrent charges never pass it together, a window with less left grants less, a
 * new window starts afresh, and a connection without a row is never given one.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chargeReplay, DEFAULT_REPLAY_BUDGET } from "../core/replayBudget";
import { getConnection } from "../core/tables";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

let dynamo: Dynamo;
beforeAll(async () => {
  dynamo = await startDynamo();
});
afterAll(async () => {
  await dynamo?.stop();
});

const budget = DEFAULT_REPLAY_BUDGET; // 2,000 frames per 10 s
const windowStart = 1_700_000_000_000; // a multiple of 10 s

describe("the replay budget", () => {
  it("40 charges of 1,000 frames at once, each from the same read of the row, grant 2,000 frames in all: never more, whatever the interleaving", async () => {
    await seedConnections(dynamo.client, dynamo.connectionsTable, [{ connectionId: "storm", roomId: "r", userId: "u" }]);
    const used = (await getConnection(dynamo.client, dynamo.connectionsTable, "storm"))?.replay;
    const charges = await Promise.all(Array.from({ length: 40 }, () => chargeReplay(dynamo.client, dynamo.connectionsTable, "storm", 1_000, used, budget, windowStart + 1_000)));
    const granted = charges.reduce((sum, charge) => sum + (charge.ok ? charge.frames : 0), 0);
    expect(granted).toBeLessThanOrEqual(2_000);
    expect(charges.filter((charge) => !charge.ok)).toEqual(charges.filter((charge) => !charge.ok).map(() => ({ ok: false, retryAfterMs: 9_000 })));
    expect((await getConnection(dynamo.client, dynamo.connectionsTable, "storm"))?.replay).toEqual({ window: windowStart / 10_000, frames: granted });
  });

  it("a window with 300 frames left grants 300 of 1,000 (a short page), then refuses until the next window, which grants in full", async () => {
    await seedConnections(dynamo.client, dynamo.connectionsTable, [{ connectionId: "paged", roomId: "r", userId: "u" }]);
    const charge = async (frames: number, now: number) =>
      chargeReplay(dynamo.client, dynamo.connectionsTable, "paged", frames, (await getConnection(dynamo.client, dynamo.connectionsTable, "paged"))?.replay, budget, now);
    expect(await charge(1_700, windowStart)).toEqual({ ok: true, frames: 1_700 });
    expect(await charge(1_000, windowStart + 2_000)).toEqual({ ok: true, frames: 300 });
    expect(await charge(1, windowStart + 2_500)).toEqual({ ok: false, retryAfterMs: 7_500 });
    expect(await charge(0, windowStart + 2_500)).toEqual({ ok: true, frames: 0 }); // nothing to send costs nothing
    expect(await charge(1_000, windowStart + 10_000)).toEqual({ ok: true, frames: 1_000 });
  });

  it("a connection whose row is gone is refused, and no row is made for it", async () => {
    expect(await chargeReplay(dynamo.client, dynamo.connectionsTable, "gone", 10, undefined, budget, windowStart)).toMatchObject({ ok: false });
    expect((await dynamo.client.send(new GetItemCommand({ TableName: dynamo.connectionsTable, Key: { connection_id: { S: "gone" } } }))).Item).toBeUndefined();
  });
});
