/**
 * Adding a handler is one manifest entry and one module: the entry point is found by
 * convention (`handlers/<name>` exporting `<name>FromEnvironment`, handlers/entryPoints.ts).
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { entryPointExport, loadEntryPoint } from "../handlers/entryPoints";
import { HANDLER_NAMES } from "../handlers/manifest";

const ROOT = path.resolve(__dirname, "..");
const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "handler-convention-"));
  temps.push(dir);
  return dir;
}

describe("entry points by convention", () => {
  it("finds every handler of the manifest (what a missing line used to be a type error for)", () => {
    for (const name of HANDLER_NAMES) expect(typeof loadEntryPoint(name), name).toBe("function");
  });

  it("a missing module fails at once, naming the handler, the file and the export it expected", () => {
    const dir = tempDir();
    expect(() => loadEntryPoint("connect", dir)).toThrow(`handler "connect" of handlers/manifest.ts needs a module ${path.join(dir, "connect")} (.ts or .js) exporting connectFromEnvironment: no such module`);
  });

  it("a module without the export fails naming what it does export", () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "connect.js"), "exports.connectFromEnv = () => async () => ({ statusCode: 200 });\n");
    expect(() => loadEntryPoint("connect", dir)).toThrow(/needs a module .*connect \(\.ts or \.js\) exporting connectFromEnvironment: it exports connectFromEnv$/);
  });

  it("an error inside the module (or a package it requires) is not disguised as a missing module", () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "connect.js"), 'require("no-such-package-for-this-test");\n');
    expect(() => loadEntryPoint("connect", dir)).toThrow(/Cannot find module 'no-such-package-for-this-test'/);
  });

  it("a typo'd name is a type error", () => {
    // @ts-expect-error "conect" is not a handler of the manifest
    expect(() => loadEntryPoint("conect", tempDir())).toThrow(entryPointExport("conect"));
  });
});

/** The whole diff of adding a handler: this manifest entry and this module. */
const ECHO_ENTRY = `  echo: {
    trigger: { kind: "route", routeKey: "echo" },
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: ["managementEndpoint"],
    grants: [{ actions: ["execute-api:ManageConnections"], resource: "postToConnections" }],
  },
`;
const ECHO_MODULE = `import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { lambdaSource, managementFrom, type HandlerSource } from "./dependencies";

export function echoFromEnvironment(source: HandlerSource = lambdaSource("echo")) {
  const management = managementFrom(source);
  return async (event: WebSocketEvent): Promise<WebSocketResult> => {
    await management.post(event.requestContext.connectionId, management.prepare(JSON.stringify({ echoed: event.body })));
    return { statusCode: 200 };
  };
}
`;
/** Runs in the copy under Node's loader, as `npm run dev` does: start the hub, send {"action":"echo"}, print the reply. */
const SCRIPT = `const { startLocalHub } = require("./local");
const { WebSocket } = require("ws");
(async () => {
  const hub = await startLocalHub({ port: 0, stage: "test", bcryptCost: 4, logLevel: "error" });
  try {
    const token = await hub.notifier.issueToken({ userId: "u", roomId: "r" });
    const ws = new WebSocket(hub.websocketUrl + "?token=" + token);
    const reply = await new Promise((resolve, reject) => {
      ws.on("error", reject);
      ws.on("open", () => ws.send(JSON.stringify({ action: "echo", n: 1 })));
      ws.on("message", (data) => resolve(JSON.parse(data.toString())));
    });
    ws.close();
    process.stdout.write(JSON.stringify(reply));
  } finally {
    await hub.stop();
  }
})().catch((err) => { console.error(err); process.exit(1); });
`;

describe("adding a handler", () => {
  it("one manifest entry + one module, and the local hub routes it", async () => {
    const copy = tempDir();
    for (const dir of ["core", "handlers", "local", "server"]) fs.cpSync(path.join(ROOT, dir), path.join(copy, dir), { recursive: true });
    for (const file of ["package.json", "tsconfig.json"]) fs.copyFileSync(path.join(ROOT, file), path.join(copy, file));
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"), "dir");
    const manifest = path.join(copy, "handlers/manifest.ts");
    const before = fs.readFileSync(manifest, "utf8");
    const after = before.replace("} as const satisfies Record<string, HandlerEntry>;", `${ECHO_ENTRY}} as const satisfies Record<string, HandlerEntry>;`);
    expect(after).not.toBe(before);
    fs.writeFileSync(manifest, after);
    fs.writeFileSync(path.join(copy, "handlers/echo.ts"), ECHO_MODULE);
    fs.writeFileSync(path.join(copy, "run.js"), SCRIPT);

    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["-r", "ts-node/register/transpile-only", "run.js"], { cwd: copy, timeout: 50_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual({ echoed: JSON.stringify({ action: "echo", n: 1 }) });
  });
});
