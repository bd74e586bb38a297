/** The component's argument checks that need no Pulumi program: pure functions of the value. */
import { describe, expect, it } from "vitest";
import { checkLogRetentionDays, LOG_RETENTION_DAYS, normalizeArgs } from "../components/notificationHub";

describe("logRetentionDays", () => {
  it("accepts exactly CloudWatch Logs' retention periods", () => {
    expect([...LOG_RETENTION_DAYS]).toEqual([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]);
    for (const days of LOG_RETENTION_DAYS) expect(checkLogRetentionDays(days)).toBe(days);
  });

  it("refuses a period CloudWatch would refuse at deploy time, naming the key and every allowed value", () => {
    for (const bad of [10, 0, -1, 2, 364, 366, 3654, 14.5, NaN]) {
      expect(() => checkLogRetentionDays(bad), String(bad)).toThrow(`NotificationHub: logRetentionDays must be one of CloudWatch Logs' retention periods (${LOG_RETENTION_DAYS.join(", ")}), got ${bad}`);
    }
  });

  it("is checked when the component's arguments are read, before any resource is declared; the default passes", () => {
    expect(() => normalizeArgs({ logRetentionDays: 10 })).toThrow(/logRetentionDays must be one of .*\b1, 3, 5, 7, 14, 30\b.*got 10$/);
    expect(normalizeArgs({}).logRetentionDays).toBe(14);
    expect(normalizeArgs({ logRetentionDays: 90 }).logRetentionDays).toBe(90);
  });
});
