/**
 * Another Pulumi program installs the packed package (as from npm) and instantiates the
 * component: its Lambdas must carry the library's handler code and run.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthRow, getConnection } from "../core/tables";
import { invokeArtifact, removeArtifact, writeArtifact, type Artifact } from "./support/artifacts";
import { authorizerEvent, routeEvent, sqsEvent, sqsRecord } from "./support/events";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { runProgram, type ProgramRun } from "./support/pulumiRun";
import { startDynamo, startSqs, type Dynamo, type Sqs } from "./support/services";

const ROOT = process.cwd();
const WORK = path.join(ROOT, "test-output", "consumer");
let run: ProgramRun;
const artifacts: Record<string, Artifact> = {};

function sh(command: string, cwd = ROOT): string {
  return childProcess.execSync(command, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_loglevel: "error" } });
}

beforeAll(async () => {
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  // `npm pack` packs exactly what npm would publish. Its `prepare` (npm run build) is skipped:
  // test/support/globalSetup.ts built dist/ from these sources for the run, and a rebuild here
  // would empty dist/ under the tests that run the CLI from it.
  const tarball = sh(`npm pack --silent --ignore-scripts --pack-destination ${JSON.stringify(WORK)}`).trim().split("\n").pop()!;
  for (const file of ["package.json", "index.ts", "Pulumi.yaml", "tsconfig.json"]) {
    fs.copyFileSync(path.join(ROOT, "examples/consumer", file), path.join(WORK, file));
  }
  // The consumer's node_modules: this repo's (hard links, no download), with notification-hub
  // installed from the tarball as npm would lay it out.
  sh(`cp -al node_modules ${JSON.stringify(path.join(WORK, "node_modules"))}`);
  const installed = path.join(WORK, "node_modules", "notification-hub");
  fs.rmSync(installed, { recursive: true, force: true });
  sh(`tar -xzf ${JSON.stringify(path.join(WORK, tarball))} -C ${JSON.stringify(WORK)} && mv package ${JSON.stringify(installed)}`, WORK);
  run = await runProgram("index.ts", "staging", {}, WORK);
  for (const fn of run.ofType("aws:lambda/function:Function")) artifacts[fn.name.replace(/^notifications-/, "")] = writeArtifact(fn, run);
}, 240_000);

afterAll(() => {
  for (const artifact of Object.values(artifacts)) removeArtifact(artifact);
});

describe("a consumer program using the published package", () => {
  it("gets the whole hub from one component", () => {
    expect(run.outputs.websocketUrl).toBe("wss://notifications-api-id.execute-api.eu-west-1.amazonaws.com/staging");
    expect(Object.keys(artifacts).sort()).toEqual(["authorizer", "connect", "default", "deliver", "disconnect", "resume", "subscribe", "unsubscribe"]);
    expect(run.ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((r) => r.inputs.policyArn)).toEqual([
      "arn:aws:iam::123456789012:policy/notifications-publisher",
    ]);
  });

  it("leaves the region's account-wide API Gateway CloudWatch role alone by default", () => {
    expect(run.ofType("aws:apigateway/account:Account")).toEqual([]);
    expect(run.ofType("aws:apigatewayv2/stage:Stage")[0].inputs.accessLogSettings).toBeUndefined();
  });

  it("serializes no secret value into any handler", () => {
    const secret = run.outputs.jwtSecret as string;
    expect(secret.length).toBeGreaterThan(20);
    for (const fn of run.ofType("aws:lambda/function:Function")) expect(fn.code!.indexJs, fn.name).not.toContain(secret);
  });

  it("ships the library's handler code inside each zip, and only what the handler needs", () => {
    const lines: string[] = [];
    for (const [handler, artifact] of Object.entries(artifacts)) {
      expect(artifact.packages, handler).toContain("notification-hub");
      expect(artifact.packages.filter((p) => /^(@aws-sdk|@smithy|@pulumi|dynalite|fauxqs|ws|vitest|typescript)/.test(p)), handler).toEqual([]);
      if (handler === "authorizer") expect(artifact.packages).toEqual(expect.arrayContaining(["jsonwebtoken", "bcryptjs"]));
      else expect(artifact.packages).toEqual(["notification-hub"]);
      expect(artifact.zipBytes).toBeLessThan(1024 * 1024);
      lines.push(`${handler.padEnd(12)} zip ~${(artifact.zipBytes / 1024).toFixed(0).padStart(4)} KiB  packages: ${artifact.packages.join(", ")}`);
    }
    console.log("consumer Lambda archives:\n  " + lines.join("\n  "));
  });

  describe("and its Lambdas run", () => {
    let dynamo: Dynamo;
    let sqs: Sqs;
    let management: StandaloneConnectionsEmulator;
    beforeAll(async () => {
      [dynamo, sqs, management] = await Promise.all([
        startDynamo({ connectionsTable: "notifications-connections", authTable: "notifications-auth", streamsTable: "notifications-streams" }),
        startSqs(),
        startConnectionsEmulator({ stage: "staging" }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([dynamo?.stop(), sqs?.stop(), management?.stop()]);
    });

    const env = (handler: string) => {
      const variables = { ...(run.named(`notifications-${handler}`).inputs as { environment: { variables: Record<string, string> } }).environment.variables };
      if (variables.MANAGEMENT_ENDPOINT) variables.MANAGEMENT_ENDPOINT = management.endpoint;
      if (variables.QUEUE_URL) variables.QUEUE_URL = sqs.createQueue("consumer-" + Date.now()).queueUrl;
      return { ...variables, DYNAMODB_ENDPOINT: dynamo.endpoint, SQS_ENDPOINT: sqs.endpoint, AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local" };
    };

    it("every function loads as the nodejs22.x runtime loads it and answers an invocation, with the SDK from the hub's layer", async () => {
      const layer = artifacts.deliver.layers[0];
      expect(layer.packages).toEqual(expect.arrayContaining(["@aws-sdk/client-dynamodb", "@smithy/signature-v4"]));
      const events: Record<string, unknown> = {
        // No token: refused before the secret is read, so no parameter store is needed.
        authorizer: authorizerEvent(null),
        connect: routeEvent("$connect", "consumer-0", { authorizer: { user_id: "u", room_id: "r", generation: "none" } }),
        disconnect: routeEvent("$disconnect", "consumer-0"),
        default: routeEvent("$default", "consumer-0", { body: "{}" }),
        deliver: sqsEvent([sqsRecord(JSON.stringify({ room_id: "nobody-here", data: 1 }), "c-0")]),
        resume: routeEvent("resume", "consumer-0", { body: JSON.stringify({ action: "resume", room_id: "r", after: 0 }) }),
        subscribe: routeEvent("subscribe", "consumer-0", { body: JSON.stringify({ action: "subscribe", room_id: "r" }) }),
        unsubscribe: routeEvent("unsubscribe", "consumer-0", { body: JSON.stringify({ action: "unsubscribe", room_id: "r" }) }),
      };
      const lines: string[] = [];
      for (const [handler, artifact] of Object.entries(artifacts)) {
        expect(artifact.layers, handler).toEqual([layer]);
        const result = await invokeArtifact(artifact, events[handler], env(handler));
        expect(result, `${handler}: ${result.error}\n${result.logs}`).toMatchObject({ ok: true });
        expect(result.value, handler).toBeTypeOf("object");
        if (handler === "authorizer") expect(result.value).toMatchObject({ policyDocument: { Statement: [{ Effect: "Deny" }] } });
        lines.push(`${handler} ${result.requireMs.toFixed(0)} ms`);
      }
      console.log(`SUMMARY consumer: every function loads on Node 22 in the runtime's layout (init ${lines.join(", ")})`);
    });

    it("connect writes the row and deliver posts to it", async () => {
      // $connect keeps a connection only while the token's auth row (the authorizer's generation) stands.
      await createAuthRow(dynamo.client, "notifications-auth", { userId: "u", authKey: "r", tokenHash: "h", generation: "g1", expiresAt: Math.floor(Date.now() / 1000) + 600 });
      const who = { user_id: "u", room_id: "r", generation: "g1" };
      const connected = await invokeArtifact(artifacts.connect, routeEvent("$connect", "consumer-1", { authorizer: who }), env("connect"));
      expect(connected.value).toMatchObject({ statusCode: 200 });
      expect(await getConnection(dynamo.client, "notifications-connections", "consumer-1")).toBeDefined();
      const delivered = await invokeArtifact(artifacts.deliver, sqsEvent([sqsRecord(JSON.stringify({ room_id: "r", data: { type: "t" } }), "c-msg")]), env("deliver"));
      expect(delivered.value).toEqual({ batchItemFailures: [] });
      expect(JSON.parse(management.received.get("consumer-1")![0])).toMatchObject({ id: "c-msg", data: { type: "t" } });
      console.log(`SUMMARY consumer: cold require of connect ${connected.requireMs.toFixed(0)} ms, deliver ${delivered.requireMs.toFixed(0)} ms`);
    });
  });
});

describe("a consumer whose packages sit in pnpm's symlinked store", () => {
  it("is stopped when the component is constructed (as at `pulumi up`), naming the way out, before it declares any child resource", async () => {
    // pnpm's isolated layout: node_modules/notification-hub is a symlink into node_modules/.pnpm/…
    const pnpmWork = path.join(ROOT, "test-output", "consumer-pnpm");
    fs.rmSync(pnpmWork, { recursive: true, force: true });
    fs.mkdirSync(pnpmWork, { recursive: true });
    for (const file of ["package.json", "index.ts", "Pulumi.yaml", "tsconfig.json"]) fs.copyFileSync(path.join(WORK, file), path.join(pnpmWork, file));
    sh(`cp -al ${JSON.stringify(path.join(WORK, "node_modules"))} ${JSON.stringify(path.join(pnpmWork, "node_modules"))}`);
    const store = path.join(pnpmWork, "node_modules", ".pnpm", "notification-hub@0.1.0", "node_modules");
    fs.mkdirSync(store, { recursive: true });
    fs.renameSync(path.join(pnpmWork, "node_modules", "notification-hub"), path.join(store, "notification-hub"));
    fs.symlinkSync(path.join(store, "notification-hub"), path.join(pnpmWork, "node_modules", "notification-hub"), "dir");
    try {
      await expect(runProgram("index.ts", "staging", {}, pnpmWork)).rejects.toThrow(/pnpm's symlinked store .*node-linker=hoisted/);
    } finally {
      fs.rmSync(pnpmWork, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("an app backend that installs the packed package for notification-hub/server alone", () => {
  // Outside the checkout: no node_modules above it may lend the backend a package it did not install.
  const BACKEND = path.join(os.tmpdir(), `backend-${process.pid}`);
  let installLog = "";
  afterAll(() => fs.rmSync(BACKEND, { recursive: true, force: true }));
  beforeAll(() => {
    fs.rmSync(BACKEND, { recursive: true, force: true });
    fs.mkdirSync(BACKEND, { recursive: true });
    const tarball = fs.readdirSync(WORK).find((file) => file.endsWith(".tgz"))!;
    fs.writeFileSync(path.join(BACKEND, "package.json"), JSON.stringify({ name: "backend", version: "1.0.0", private: true }));
    // As a newcomer would, from the npm cache this clone's own install filled (no new download).
    installLog = sh(`npm install --prefer-offline --no-audit --no-fund ${JSON.stringify(path.join(WORK, tarball))} @types/node@20 2>&1`, BACKEND);
  }, 180_000);

  it("installs lean: none of the component's or the local hub's heavy peers, no engine warning on Node 20", () => {
    const modules = path.join(BACKEND, "node_modules");
    for (const heavy of ["@pulumi/pulumi", "@pulumi/aws", "dynalite", "fauxqs"]) expect(fs.existsSync(path.join(modules, heavy)), heavy).toBe(false);
    expect(installLog).not.toMatch(/EBADENGINE/);
    const bytes = Number(sh(`du -sb ${JSON.stringify(modules)}`).split("\t")[0]);
    // 239 MB when the Pulumi packages, dynalite and fauxqs came along; the AWS SDK is most of what is left.
    expect(bytes).toBeLessThan(60 * 1024 * 1024);
    console.log(`SUMMARY lean install: a backend using notification-hub/server installs ${(bytes / 1024 / 1024).toFixed(0)} MB of node_modules`);
  });

  it("compiles its TypeScript against the package without skipLibCheck, with node16 and with classic node10 resolution", () => {
    fs.writeFileSync(
      path.join(BACKEND, "backend.ts"),
      [
        'import { createNotifier } from "notification-hub/server";',
        'const notifier = createNotifier({ queueUrl: "q", authTableName: "a", connectionsTableName: "c", managementEndpoint: "https://x", jwtSecret: "s" });',
        'export const publish = () => notifier.publish({ roomId: "r", data: { type: "t" } });',
        "",
      ].join("\n"),
    );
    const tsc = path.join(ROOT, "node_modules", ".bin", "tsc");
    for (const [module, moduleResolution] of [["node16", "node16"], ["commonjs", "node10"]]) {
      const config = { compilerOptions: { strict: true, skipLibCheck: false, module, moduleResolution, target: "ES2022", noEmit: true, types: ["node"] }, files: ["backend.ts"] };
      fs.writeFileSync(path.join(BACKEND, "tsconfig.json"), JSON.stringify(config));
      expect(() => sh(`${JSON.stringify(tsc)} -p tsconfig.json`, BACKEND), `${module}/${moduleResolution}`).not.toThrow();
    }
  });

  it("requires /server from CommonJS, and names exactly what to install for the component or the local hub", () => {
    expect(sh(`node -e 'console.log(Object.keys(require("notification-hub/server")).join(","))'`, BACKEND).trim().split(",").sort()).toEqual(["REVOKE_RETRY", "RevocationIncompleteError", "createNotifier"]);
    expect(() => sh(`node -e 'require("notification-hub")'`, BACKEND)).toThrow(/the NotificationHub component needs @pulumi\/pulumi, @pulumi\/aws, @pulumi\/random.*npm install @pulumi\/pulumi @pulumi\/aws @pulumi\/random/s);
    const local = sh(`node -e 'require("notification-hub/local").startLocalHub().catch((err) => console.log(err.message))'`, BACKEND);
    expect(local).toMatch(/the local hub .* needs dynalite, fauxqs.*npm install dynalite fauxqs/);
  });
});

