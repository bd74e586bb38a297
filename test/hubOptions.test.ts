/**
 * The component and the local hub read their shared options by the same rules
 * (core/hubOptions.ts): a value one refuses, the other refuses too, each naming the key and
 * the allowed range, and the local hub before it starts anything.
 */
import { describe, expect, it } from "vitest";
import { normalizeArgs } from "../components/notificationHub";
import { HubOptionError } from "../core/hubOptions";
import { startLocalHub } from "../local";

/** The same option, as the component takes it and as startLocalHub takes it. */
const CASES: { what: string; component: Parameters<typeof normalizeArgs>[0]; local: Parameters<typeof startLocalHub>[0]; message: RegExp }[] = [
  { what: "retentionHours past a year", component: { history: { retentionHours: 9000 } }, local: { history: { retentionHours: 9000 } }, message: /history\.retentionHours must be a number of hours from 0 \(streams off\) to 8760, got 9000/ },
  { what: "negative retentionHours", component: { history: { retentionHours: -1 } }, local: { history: { retentionHours: -1 } }, message: /history\.retentionHours .* got -1/ },
  { what: "retentionHours that is not a number", component: { history: { retentionHours: Number.NaN } }, local: { history: { retentionHours: Number.NaN } }, message: /history\.retentionHours .* got NaN/ },
  { what: "maxRoomsPerConnection past the limit", component: { maxRoomsPerConnection: 1001 }, local: { maxRoomsPerConnection: 1001 }, message: /maxRoomsPerConnection must be a whole number from 1 to 1000, got 1001/ },
  { what: "a fractional chunk size", component: { queue: { largeRoomChunkSize: 2.5 } }, local: { largeRoomChunkSize: 2.5 }, message: /(queue\.)?largeRoomChunkSize must be a whole number from 1 to 100000, got 2.5/ },
  { what: "a batch SQS would refuse", component: { queue: { batchSize: 11 } }, local: { queue: { batchSize: 11 } }, message: /queue\.batchSize must be a whole number from 1 to 10, got 11/ },
  { what: "a post budget under one post per window", component: { delivery: { postsPerSecond: 5 } }, local: { delivery: { postsPerSecond: 5 } }, message: /delivery\.postsPerSecond must be a whole number from 10 to 100000, got 5/ },
  { what: "a fractional post budget", component: { delivery: { postsPerSecond: 1000.5 } }, local: { delivery: { postsPerSecond: 1000.5 } }, message: /delivery\.postsPerSecond must be a whole number from 10 to 100000, got 1000.5/ },
  {
    what: "a presence keep-alive past API Gateway's idle timeout",
    component: { presence: { enabled: true, keepAliveSeconds: 600 } },
    local: { presence: { enabled: true, keepAliveSeconds: 600 } },
    message: /presence\.keepAliveSeconds must be a (whole )?number from (10|0\.05) to 540, got 600/,
  },
  { what: "no receive at all", component: { queue: { maxReceiveCount: 0 } }, local: { queue: { maxReceiveCount: 0 } }, message: /queue\.maxReceiveCount must be a whole number from (5|1) to 1000, got 0/ },
];

describe("shared option rules", () => {
  it.each(CASES)("the component and the local hub both refuse $what, naming the key and the range", async ({ component, local, message }) => {
    expect(() => normalizeArgs(component)).toThrow(HubOptionError);
    expect(() => normalizeArgs(component)).toThrow(new RegExp(`^NotificationHub: ${message.source}`));
    // Refused before a port, a table or a queue exists: nothing to stop.
    await expect(startLocalHub({ port: 0, ...local })).rejects.toThrow(new RegExp(`^startLocalHub: ${message.source}`));
  });

  it("lets the local hub dead-letter after fewer receives than a deployed hub may (a test's shortcut), and no fewer than SQS allows", () => {
    expect(() => normalizeArgs({ queue: { maxReceiveCount: 2 } })).toThrow(/queue\.maxReceiveCount must be a whole number from 5 to 1000, got 2/);
    expect(normalizeArgs({ history: { retentionHours: 1 / 3600 } }).retentionHours).toBe(1 / 3600);
  });

  it("refuses a local dropDisconnect share outside 0 to 1, and one without presence (nothing would sweep what it leaves), before anything starts", async () => {
    const presence = { enabled: true };
    for (const share of [-0.1, 1.5, Number.NaN]) {
      await expect(startLocalHub({ port: 0, presence, dropDisconnect: share })).rejects.toThrow(
        new RegExp(`^startLocalHub: dropDisconnect must be a number from 0 to 1 \\(the share of closes whose \\$disconnect never runs\\), got ${share}$`),
      );
    }
    await expect(startLocalHub({ port: 0, dropDisconnect: 0.5 })).rejects.toThrow(/^startLocalHub: dropDisconnect needs presence on \(presence: \{ enabled: true \}\)/);
  });

  it("keeps a deployed hub's presence keep-alive to whole seconds from 10 (each ping is a billed message and a write), 45 by default", () => {
    expect(normalizeArgs({ presence: { enabled: true } }).presence?.keepAliveSeconds).toBe(45);
    expect(() => normalizeArgs({ presence: { enabled: true, keepAliveSeconds: 5 } })).toThrow(/presence\.keepAliveSeconds must be a whole number from 10 to 540, got 5/);
    expect(() => normalizeArgs({ presence: { enabled: true, keepAliveSeconds: 30.5 } })).toThrow(/presence\.keepAliveSeconds must be a whole number from 10 to 540, got 30.5/);
  });
});
