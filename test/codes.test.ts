/**
 * The hub's error codes: one table (core/errorCodes.ts) that the handlers send from (the type
 * system holds them to it), that every `hub.error` frame reads `temporary` from, and that the
 * browser client's plain-JavaScript copy (client/codes.mjs) matches exactly.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnectionsApi } from "../core/connections";
import { HUB_ERROR_CODES, type HubErrorCode } from "../core/errorCodes";
import { errorFrame } from "../core/messages";
import { normalizeGrants } from "../core/rooms";
import { createDefaultHandler } from "../handlers/default";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { routeEvent } from "./support/events";
import { capturingLogger } from "./support/logs";

const ROOT = path.join(__dirname, "..");
const codes = Object.keys(HUB_ERROR_CODES) as HubErrorCode[];

describe("the hub's error code table", () => {
  it("every hub.error frame carries its code's temporary flag from the table", () => {
    for (const code of codes) expect(errorFrame(code, "m", { room_id: "r" }).data.data).toEqual({ room_id: "r", code, message: "m", temporary: HUB_ERROR_CODES[code].temporary });
    // The rule: only a failure of the hub (or of a race) passes if the same request goes again.
    expect(codes.filter((code) => HUB_ERROR_CODES[code].temporary).sort()).toEqual(
      ["delivery_failed", "delivery_incomplete", "resume_failed", "subscribe_failed", "unknown_connection", "unsubscribe_failed"].sort(),
    );
  });

  it("lists no code the hub never sends: each appears as a literal in core/ or handlers/", () => {
    const sources = ["core", "handlers"]
      .flatMap((dir) => fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" }).map((file) => path.join(ROOT, dir, file)))
      .filter((file) => file.endsWith(".ts") && !file.endsWith("errorCodes.ts"))
      .map((file) => fs.readFileSync(file, "utf8"))
      .join("\n");
    expect(codes.filter((code) => !sources.includes(`"${code}"`))).toEqual([]);
  });

  it("a token's rooms entry that is not an id is refused invalid_rooms, the entry named in the reason, never in the code", () => {
    const refused = normalizeGrants(["ok", "a\nb"]);
    expect(refused).toMatchObject({ ok: false, code: "invalid_rooms", reason: expect.stringContaining("rooms[1]") });
  });

  describe("through a handler", () => {
    let management: StandaloneConnectionsEmulator;
    beforeAll(async () => {
      management = await startConnectionsEmulator();
    });
    afterAll(async () => {
      await management?.stop();
    });

    it("$default's refusal says temporary: false", async () => {
      const fallback = createDefaultHandler({ management: createConnectionsApi(management.endpoint), log: capturingLogger().log, clientMessagesAllowed: true });
      await fallback(routeEvent("$default", "c1", { body: "not json" }));
      expect(JSON.parse(management.received.get("c1")![0]).data).toMatchObject({ type: "hub.error", data: { code: "invalid_json", temporary: false } });
    });
  });
});
