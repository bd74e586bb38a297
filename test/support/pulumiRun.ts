/** Runs a Pulumi program under mocks in a child process (see runProgram.ts) and reads back what it registered. */
import * as childProcess from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { MOCK_ACCOUNT_ENV, type Deployment } from "./mockAccount";
import type { RecordedResource } from "./runProgram";

export interface ProgramRun {
  outputs: Record<string, unknown>;
  resources: RecordedResource[];
  urns: string[];
  /** `${type}::${name}` → the former names (or URNs) the resource declares as `aliases`. */
  aliases: Record<string, string[]>;
  /** The project's own modules (outside node_modules) the run loaded. */
  loaded: string[];
  /** With MOCK_ACCOUNT_FILE (mockAccount.ts): what this `up` created, updated, left unchanged, deleted and dropped from the state. */
  deployment?: Deployment;
  ofType(type: string): RecordedResource[];
  named(name: string): RecordedResource;
}

const ROOT = path.resolve(__dirname, "../..");

interface ProjectFile {
  name: string;
  main?: string;
  config?: Record<string, { type?: string; default?: unknown; secret?: boolean } | string | number | boolean>;
}

export function readProject(projectDir = ROOT): ProjectFile {
  return yaml.load(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as ProjectFile;
}

/**
 * Stack config as the CLI builds it from project config: Pulumi.yaml's declared keys (in the
 * project's namespace unless namespaced) with their defaults, then the stack file. As the CLI
 * does, refuses a stack that leaves a declared key without a default or a value ("Stack 'x' is
 * missing configuration values"), and a value of the wrong declared type.
 */
export function stackConfig(stack: string, projectDir = ROOT, extra: Record<string, string> = {}): Record<string, string> {
  const project = readProject(projectDir);
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  const stackValues = fs.existsSync(stackFile) ? ((yaml.load(fs.readFileSync(stackFile, "utf8")) as { config?: Record<string, unknown> }).config ?? {}) : {};
  const config: Record<string, string> = {};
  const missing: string[] = [];
  const wrongType: string[] = [];
  const given = { ...Object.fromEntries(Object.entries(stackValues).map(([k, v]) => [k, String(v)])), ...extra };
  for (const [key, raw] of Object.entries(project.config ?? {})) {
    const fullKey = key.includes(":") ? key : `${project.name}:${key}`;
    // A bare value is a default of its own type (the short form Pulumi.yaml allows).
    const spec = raw !== null && typeof raw === "object" ? raw : { default: raw };
    const value = fullKey in given ? given[fullKey] : "default" in spec ? String(spec.default) : undefined;
    if (value === undefined) {
      missing.push(fullKey);
      continue;
    }
    if ((spec.type === "integer" && !/^-?\d+$/.test(value)) || (spec.type === "boolean" && !/^(true|false)$/.test(value))) wrongType.push(`${fullKey} (${spec.type}): ${value}`);
    config[fullKey] = value;
  }
  if (missing.length) throw new Error(`Stack '${stack}' is missing configuration values: ${missing.join(", ")}`);
  if (wrongType.length) throw new Error(`Stack '${stack}' has configuration values of the wrong type: ${wrongType.join("; ")}`);
  return { ...config, ...given };
}

/**
 * The entry point the Node.js language host hands to `cmd/run`: Pulumi.yaml's `main` when it
 * names a file, "." when it has none (then `cmd/run` looks at package.json exports and main).
 */
export function hostEntryFor(project: ProjectFile): string {
  return project.main ?? ".";
}

/** The "custom" stack of the component tests: every optional part on, client messages off. */
export const CUSTOM_CONFIG: Record<string, string> = {
  "notification-hub:allowClientMessages": "false",
  "notification-hub:alarmEmail": "oncall@example.com",
  "notification-hub:domainName": "ws.example.com",
  "notification-hub:domainCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
  "notification-hub:domainHostedZoneId": "Z123",
  "notification-hub:apiGatewayLogging": "existing",
  "notification-hub:maxRoomsPerConnection": "20",
};

export interface RunOptions {
  /** Run through @pulumi/pulumi's cmd/run with this entry point instead of requiring `program`. */
  hostEntry?: string;
  env?: Record<string, string>;
}

type RecordedRun = Omit<ProgramRun, "ofType" | "named">;

function withLookups(data: RecordedRun): ProgramRun {
  return {
    ...data,
    ofType: (type) => data.resources.filter((r) => r.type === type),
    named: (name) => {
      const found = data.resources.find((r) => r.name === name);
      if (!found) throw new Error(`no resource named ${name}`);
      return found;
    },
  };
}

/**
 * Set by test/support/globalSetup.ts to a folder of the current test run. Several test files
 * run this repository's program with the same stack and config (the development stack: the
 * component, its parts, the IAM simulation); the sources cannot change during a run, so the
 * first to ask runs it and the others read its record instead of starting ts-node again.
 */
export const TEST_RUN_DIR_ENV = "NOTIFICATION_HUB_TEST_RUN_DIR";
/** A sharer gives up waiting and runs the program itself after this long. */
const SHARED_WAIT_MS = 240_000;

/** How a run's process is started; not part of what it computes (nor of the key runs are shared by). */
export interface Launch {
  /** Unix priority (nice) for the program's process: the background runs take 19. */
  priority?: number;
  /** Told of each process started, to stop it early (background.ts at the end of a test run). */
  onChild?: (child: childProcess.ChildProcess) => void;
}

export async function runProgram(program: string, stack: string, config: Record<string, string>, cwd = ROOT, options: RunOptions = {}, launch: Launch = {}): Promise<ProgramRun> {
  const runDir = process.env[TEST_RUN_DIR_ENV];
  // Only this repository's own program: other folders are copies a test made and may change. A run
  // against a mock account reads and changes it: its result depends on more than the sources.
  if (!runDir || path.resolve(cwd) !== ROOT || options.env?.[MOCK_ACCOUNT_ENV]) return withLookups(await runProgramOnce(program, stack, config, cwd, options, launch));
  const key = crypto.createHash("sha256").update(JSON.stringify([program, stack, config, options])).digest("hex").slice(0, 24);
  const dir = path.join(runDir, "program-runs");
  fs.mkdirSync(dir, { recursive: true });
  const record = path.join(dir, `${key}.json`);
  const failed = path.join(dir, `${key}.failed`);
  /** The running program's pid, for a sharer to raise the priority of (a background run starts at nice 19). */
  const running = path.join(dir, `${key}.pid`);
  let owner = true;
  try {
    fs.writeFileSync(path.join(dir, `${key}.lock`), String(process.pid), { flag: "wx" });
  } catch {
    owner = false;
  }
  if (owner) {
    try {
      const data = await runProgramOnce(program, stack, config, cwd, options, {
        ...launch,
        onChild: (child) => {
          if (child.pid) fs.writeFileSync(running, String(child.pid));
          launch.onChild?.(child);
        },
      });
      fs.rmSync(running, { force: true });
      fs.writeFileSync(`${record}.tmp`, JSON.stringify(data));
      fs.renameSync(`${record}.tmp`, record);
      return withLookups(data);
    } catch (err) {
      fs.rmSync(running, { force: true });
      fs.writeFileSync(failed, String(err));
      throw err;
    }
  }
  // Another test file or the background runs it: wait for its record (or its failure: then run it
  // here, for our own error). Waited for, a background run gets the priority of a test's own.
  const deadline = Date.now() + SHARED_WAIT_MS;
  while (!fs.existsSync(record) && !fs.existsSync(failed) && Date.now() < deadline) {
    if (fs.existsSync(running)) raisePriority(Number(fs.readFileSync(running, "utf8")));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (fs.existsSync(record)) return withLookups(JSON.parse(fs.readFileSync(record, "utf8")) as RecordedRun);
  return withLookups(await runProgramOnce(program, stack, config, cwd, options, launch));
}

/** Back to the default priority (nice 0) for a process started at a lower one; lowering its nice value takes root, else nothing changes. */
export function raisePriority(pid: number): void {
  try {
    if (pid > 0 && os.getPriority(pid) > 0) os.setPriority(pid, 0);
  } catch {
    // gone already, or not allowed: it runs on at the priority it has
  }
}

function runProgramOnce(program: string, stack: string, config: Record<string, string>, cwd: string, options: RunOptions, launch: Launch): Promise<RecordedRun> {
  const outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-run-")), "run.json");
  // The runner must load @pulumi/pulumi from the program's own node_modules (the instance the
  // program registers resources with), so outside this repo it runs from a copy beside the program.
  let runner = path.join(ROOT, "test/support/runProgram.ts");
  if (path.resolve(cwd) !== ROOT) {
    const copy = path.join(cwd, "run-program.ts");
    fs.copyFileSync(runner, copy);
    runner = copy;
  }
  return new Promise((resolve, reject) => {
    const child = childProcess.execFile(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", runner, program, stack, JSON.stringify(config), outFile],
      {
        cwd,
        env: {
          ...process.env,
          TS_NODE_PROJECT: path.join(cwd, "tsconfig.json"),
          PULUMI_NODEJS_PROJECT: "",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          // The language host sets PULUMI_NODEJS_TYPESCRIPT for `runtime.options.typescript: true`; cmd/run then
          // registers ts-node with its own options (transpile-only here, as `tsc --noEmit` checks types in npm test).
          ...(options.hostEntry !== undefined ? { PULUMI_HOST_ENTRY: options.hostEntry, PULUMI_NODEJS_TYPESCRIPT: "true", PULUMI_NODEJS_TRANSPILE_ONLY: "true" } : {}),
          ...options.env,
        },
        timeout: 300_000, // several programs at once on a shared 2-core machine can each take minutes
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, _stdout, stderr) => {
        if (error) {
          fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
          reject(new Error(`program ${program} (${stack}) failed: ${error.message}\n${stderr}`));
          return;
        }
        const data = JSON.parse(fs.readFileSync(outFile, "utf8")) as RecordedRun;
        fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
        resolve(data);
      },
    );
    if (launch.priority && child.pid) {
      try {
        os.setPriority(child.pid, launch.priority);
      } catch {
        // already gone: its callback reports how it ended
      }
    }
    launch.onChild?.(child);
  });
}

/** One run of a program of this repository, as runProgram takes it. */
export interface RunSpec {
  program: string;
  stack: string;
  config: Record<string, string>;
  options?: RunOptions;
}

const rootRun = (program: string, stack: string, config: Record<string, string>, options?: RunOptions): RunSpec => ({ program, stack, config, options });

/**
 * The custom stack's JWT secret: a value no code could hold by accident (the tests look for it
 * in every serialized handler), the same in every process of one test run so that run can be
 * shared, and different in each run.
 */
const PROCESS_SEED = crypto.randomBytes(12).toString("hex");
export function customJwtSecret(): string {
  const seed = process.env[TEST_RUN_DIR_ENV] ?? PROCESS_SEED;
  return "custom-jwt-secret-" + crypto.createHash("sha256").update(seed).digest("hex").slice(0, 24);
}

/** The program's `apiGatewayLogging: ifUnset` on the development stack, where the region's setting holds `roleArn` ("" = unset). */
export function ifUnsetLoggingRun(roleArn: string): RunSpec {
  return rootRun("index.ts", "development", stackConfig("development", ROOT, { "notification-hub:apiGatewayLogging": "ifUnset" }), { env: { MOCK_APIGATEWAY_ROLE_ARN: roleArn } });
}

/** One `pulumi up` of the development stack with `apiGatewayLogging: ifUnset` against the mock account in `accountFile` (mockAccount.ts). */
export function upWithAccount(accountFile: string): Promise<ProgramRun> {
  const spec = ifUnsetLoggingRun("");
  return runSpec({ ...spec, options: { env: { [MOCK_ACCOUNT_ENV]: accountFile } } });
}

/** Another stack's role, already set as the region's API Gateway CloudWatch role. */
export const OTHER_STACKS_ROLE_ARN = "arn:aws:iam::123456789012:role/platform-apigateway-logs";

/**
 * Runs of this repository's programs that test files read, by name. Each is one child process
 * of ts-node and Pulumi (seconds of CPU); test/support/background.ts starts the ones a test run
 * will need at its beginning, at the lowest priority, and the tests read their records.
 */
export const SHARED_RUNS = {
  development: () => rootRun("index.ts", "development", stackConfig("development")),
  production: () => rootRun("index.ts", "production", stackConfig("production")),
  /** The production stack (alarms on) with presence on: the sweep's alarms. */
  productionPresence: () => rootRun("index.ts", "production", stackConfig("production", ROOT, { "notification-hub:presence": "true" })),
  /** Every optional part on, client messages off, a JWT secret of its own. */
  custom: () => rootRun("index.ts", "custom", stackConfig("custom", ROOT, { "notification-hub:jwtSecret": customJwtSecret(), ...CUSTOM_CONFIG })),
  /** The second configuration of the URN baseline (test/fixtures/urns-before-split.json). */
  ifunsetBaseline: () =>
    rootRun(
      "index.ts",
      "ifunset",
      stackConfig("ifunset", ROOT, { "notification-hub:jwtSecret": "custom-secret-xyz", ...CUSTOM_CONFIG, "notification-hub:apiGatewayLogging": "ifUnset", "notification-hub:allowClientMessages": "true" }),
    ),
  transform: () => rootRun("test/fixtures/transformProgram.ts", "development", stackConfig("development")),
  // As `pulumi up` runs the project: @pulumi/pulumi's own host entry (cmd/run) gets the entry
  // point the Node.js language host passes: Pulumi.yaml's main, or "." when it names none.
  hostDevelopment: () => rootRun(hostEntryFor(readProject()), "development", stackConfig("development"), { hostEntry: hostEntryFor(readProject()) }),
  hostProduction: () => rootRun(hostEntryFor(readProject()), "production", stackConfig("production"), { hostEntry: hostEntryFor(readProject()) }),
  hostWithoutMain: () => rootRun(".", "development", stackConfig("development"), { hostEntry: hostEntryFor({ ...readProject(), main: undefined }) }),
  longName: () => rootRun("test/fixtures/longNameProgram.ts", "development", stackConfig("development")),
  ifUnsetWhereUnset: () => ifUnsetLoggingRun(""),
  ifUnsetWhereOtherStacks: () => ifUnsetLoggingRun(OTHER_STACKS_ROLE_ARN),
  govPartition: () => rootRun("index.ts", "production", stackConfig("production"), { env: { MOCK_PARTITION: "aws-us-gov" } }),
  /** The production stack (alarms, API Gateway logs and their account role) in the China partition. */
  chinaPartition: () => rootRun("index.ts", "production", stackConfig("production"), { env: { MOCK_PARTITION: "aws-cn", MOCK_REGION: "cn-northwest-1" } }),
} satisfies Record<string, () => RunSpec>;
export type SharedRunName = keyof typeof SHARED_RUNS;

/** Which shared runs each test file reads, in the order it reads them (background.ts starts them in this order). */
export const SHARED_RUNS_OF: Record<string, SharedRunName[]> = {
  "iamSimulation.test.ts": ["development"],
  "componentParts.test.ts": ["development", "ifunsetBaseline", "transform"],
  "component.test.ts": ["development", "production", "custom"],
  "partitions.test.ts": ["chinaPartition"],
  "alarms.test.ts": ["production", "productionPresence"],
  "pulumiProgram.test.ts": ["hostDevelopment", "hostProduction", "hostWithoutMain", "longName", "ifUnsetWhereUnset", "ifUnsetWhereOtherStacks", "govPartition"],
};

export function runSpec(spec: RunSpec, launch?: Launch): Promise<ProgramRun> {
  return runProgram(spec.program, spec.stack, spec.config, ROOT, spec.options, launch);
}

/** A shared run's record: read from the run that a background process or another test file made, or made here. */
export function sharedRun(name: SharedRunName): Promise<ProgramRun> {
  return runSpec(SHARED_RUNS[name]());
}
