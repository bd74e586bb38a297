/**
 * The hub's error codes: one table (core/errorCodes.ts) that the handlers send from (the type
 * system holds them to it), that every `hub.error` frame reads `temporary` from, and that the
 * browser client's plain-JavaScript copy (client/codes.mjs) matches exactly.
 */
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnectionsApi } from "../core/connections";
import { HUB_ERROR_CODES, type HubErrorCode } from "../core/errorCodes";
import { errorFrame } from "../core/messages";
import { normalizeGrants } from "../core/rooms";
import { createDefaultHandler } from "../handlers/default";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { routeEvent } from "./support/events";
import { capturingLogger } from "./support/logs";

type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
type ClientHubErrorCode = import("../client/index.mjs", { with: { "resolution-mode": "import" } }).HubErrorCode;

const ROOT = path.join(__dirname, "..");
const codes = Object.keys(HUB_ERROR_CODES) as HubErrorCode[];

describe("the hub's error code table", () => {
  it("every hub.error frame carries its code's temporary flag from the table", () => {
    for (const code of codes) expect(errorFrame(code, "m", { room_id: "r" }).data.data).toEqual({ room_id: "r", code, message: "m", temporary: HUB_ERROR_CODES[code].temporary });
    // The rule: only a failure of the hub (or of a race) passes if the same request goes again.
    expect(codes.filter((code) => HUB_ERROR_CODES[code].temporary).sort()).toEqual(
      ["delivery_failed", "delivery_incomplete", "presence_failed", "resume_failed", "resume_throttled", "subscribe_failed", "unknown_connection", "unsubscribe_failed"].sort(),
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

describe("the browser client's copy", () => {
  let client: ClientModule;
  beforeAll(async () => {
    client = await import("../client/index.mjs");
  });

  it("client/codes.mjs holds the hub's table exactly: the same codes in the same order, each with the same flags and routes", () => {
    expect(JSON.stringify(client.HUB_ERROR_CODES)).toBe(JSON.stringify(HUB_ERROR_CODES));
    expect(client.HUB_ERROR_CODES).toEqual(HUB_ERROR_CODES);
    expect(Object.isFrozen(client.HUB_ERROR_CODES) && Object.isFrozen(client.HUB_ERROR_CODES.forbidden.routes)).toBe(true);
    // index.d.mts names the same codes (checked when this file is type-checked).
    const sameCodes: [ClientHubErrorCode] extends [HubErrorCode] ? ([HubErrorCode] extends [ClientHubErrorCode] ? true : false) : false = true;
    expect(sameCodes).toBe(true);
  });

  it("the client's own codes do not collide with the hub's", () => {
    expect(Object.keys(client.CLIENT_ERROR_CODES).filter((code) => code in HUB_ERROR_CODES)).toEqual([]);
  });
});

describe("checkJs on the client", () => {
  /** Type-checks client/ as `npm test` does (client/tsconfig.json), with `replace` applied to its files' text. */
  function clientDiagnostics(replace: (file: string, text: string) => string = (_file, text) => text): string[] {
    const configFile = path.join(ROOT, "client", "tsconfig.json");
    const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    if (!config) throw new Error("client/tsconfig.json did not parse");
    const host = ts.createCompilerHost(config.options);
    const readFile = host.readFile.bind(host);
    host.readFile = (file) => {
      const text = readFile(file);
      return text === undefined || !file.startsWith(path.join(ROOT, "client")) ? text : replace(path.basename(file), text);
    };
    const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, host });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  }

  it("npm test runs it over every client module, and the modules pass; a module that breaks index.d.mts's promise fails it", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string>; files: string[] };
    // `npm test` type-checks first (its typecheck script), then runs vitest.
    expect(pkg.scripts.test).toMatch(/^npm run -s typecheck && /);
    expect(pkg.scripts.typecheck).toContain("tsc -p client/tsconfig.json");
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, "client", "tsconfig.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")) as { compilerOptions: { checkJs: boolean }; files: string[] };
    expect(config.compilerOptions.checkJs).toBe(true);
    const modules = fs.readdirSync(path.join(ROOT, "client")).filter((file) => file.endsWith(".mjs"));
    expect([...config.files].sort()).toEqual([...modules, "index.d.mts"].sort());
    expect(clientDiagnostics()).toEqual([]);
    // lastSeq() declared number | undefined: a module returning text is caught.
    const broken = clientDiagnostics((file, text) => (file === "index.mjs" ? text.replace("rooms.peek(roomId)?.lastSeq,", "String(rooms.peek(roomId)?.lastSeq),") : text));
    expect(broken.join("\n")).toMatch(/not assignable to type 'number'/);
  }, 60_000);
});
