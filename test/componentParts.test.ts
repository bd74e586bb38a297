/**
 * The component after its split into parts (components/hub/): under Pulumi's mocks, every
 * resource a stack had before the split (test/fixtures/urns-before-split.json, recorded at
 * 7d2eaa0 for two configurations) is still there under the same URN, or its successor declares the old name as an
 * alias, so `pulumi up` updates it in place instead of replacing it; the transform hooks and
 * the nodes getter work; the functions and routes follow the handler manifest.
 */
import * as fs from "fs";
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { deployedHandlers, HANDLER_NAMES, routesOf } from "../handlers/manifest";
import { sharedRun, type ProgramRun, type SharedRunName } from "./support/pulumiRun";

const ROOT = process.cwd();
const BEFORE = JSON.parse(fs.readFileSync(path.join(ROOT, "test/fixtures/urns-before-split.json"), "utf8")) as Record<string, string[]>;
/**
 * The configurations the baseline was recorded with (test/support/pulumiRun.ts). Between them
 * every kind of child exists: development has the generated secret; ifUnset has alarms, the
 * domain, API Gateway logs and the account-wide logging role.
 */
const CONFIGS: Record<string, SharedRunName> = { development: "development", ifUnset: "ifunsetBaseline" };
const runs: Record<string, ProgramRun> = {};
let transformed: ProgramRun;

beforeAll(async () => {
  // One program at a time when they run here: each is a Node process of its own, and the machine is
  // shared. In a full test run they ran in the background already (test/support/background.ts).
  for (const [config, name] of Object.entries(CONFIGS)) runs[config] = await sharedRun(name);
  transformed = await sharedRun("transform");
}, 400_000);

const parts = (urn: string) => {
  const [, , typePath, name] = urn.split("::");
  return { typePath, type: typePath.split("$").pop()!, name };
};

describe.each(Object.keys(CONFIGS))("the %s configuration", (config) => {
  it("keeps every resource of the stack before the split: same URN, or an alias to it", () => {
    const run = runs[config];
    const now = new Set(run.urns);
    const renamed: string[] = [];
    for (const old of BEFORE[config]) {
      if (now.has(old)) continue;
      const before = parts(old);
      const successor = run.urns.find((urn) => {
        const after = parts(urn);
        return after.typePath === before.typePath && (run.aliases[`${after.type}::${after.name}`] ?? []).some((alias) => alias === before.name || alias === old);
      });
      expect(successor, `${old} is gone without an alias: pulumi up would replace it`).toBeDefined();
      renamed.push(`${before.name} → ${parts(successor!).name}`);
    }
    // New resources are allowed (a handler added to the manifest brings its own); lost ones are not.
    if (config === "development") console.log(`SUMMARY component split: ${run.urns.length} resources, same URNs except ${renamed.length} renamed with aliases (${renamed.join(", ")})`);
  });
});

describe("the handler manifest drives the component", () => {
  it("one function per handler, one route per route handler, plus the keep-alive route API Gateway answers", () => {
    const functions = runs.development.ofType("aws:lambda/function:Function").map((f) => f.name.replace(/^hub-/, ""));
    expect(functions.sort()).toEqual([...HANDLER_NAMES].sort());
    const routeKeys = runs.development.ofType("aws:apigatewayv2/route:Route").map((r) => r.inputs.routeKey);
    expect(routeKeys.sort()).toEqual([...routesOf(HANDLER_NAMES).map((r) => r.routeKey), KEEP_ALIVE_ROUTE_KEY].sort());
  });

  it("no Lambda carries the manifest: each zip holds only its own code", () => {
    for (const fn of runs.development.ofType("aws:lambda/function:Function")) {
      expect(fn.code!.indexJs, fn.name).not.toContain("whenClientMessages");
      expect(fn.code!.indexJs, fn.name).not.toContain("roomIndex");
    }
  });
});

describe("transform hooks and nodes", () => {
  it("applies each kind's transform to every child of that kind, mutated or returned", () => {
    for (const fn of transformed.ofType("aws:lambda/function:Function")) expect(fn.inputs.memorySize, fn.name).toBe(1024);
    for (const table of transformed.ofType("aws:dynamodb/table:Table")) expect(table.inputs.tags, table.name).toEqual({ transformed: table.name });
    expect(transformed.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.description).toBe("transformed stage");
    // Kinds without a transform are untouched.
    expect(transformed.ofType("aws:sqs/queue:Queue").every((q) => q.inputs.tags === undefined || JSON.stringify(q.inputs.tags) === "{}")).toBe(true);
  });

  it("reaches the children through nodes", () => {
    const nodes = transformed.outputs.nodes as { functions: string[]; routes: string[]; roleOfDeliver: string; stageUrn: string; tables: string[] };
    // Presence is off here: its handlers (presence, occupancy, sweep) are not deployed.
    const deployed = deployedHandlers(true, false);
    expect(nodes.functions).toEqual([...deployed].sort());
    expect(nodes.routes).toEqual(routesOf(deployed).map((r) => r.handler).sort());
    expect(nodes.roleOfDeliver).toBe("hub-deliver-role");
    expect(nodes.stageUrn).toMatch(/NotificationHub\$aws:apigatewayv2\/stage:Stage::hub-stage$/);
    expect(nodes.tables).toEqual(["hub-connections", "hub-auth"]);
  });
});
