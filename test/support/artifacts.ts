/**
 * Runs a CallbackFunction as AWS Lambda's nodejs22.x runtime runs it.
 *
 * What the runtime does, and how this file plays it (each at least as strict as AWS):
 * - `/var/task` is the function's zip, the working directory, and where `__index.js` is
 *   loaded from: here a temporary folder with the archive's files (writeArtifact), under
 *   the test run's temp folder, with no `node_modules` in any folder above it (checked).
 * - `/opt` is the function's layers, unzipped one over the other: here a folder with the
 *   layers' archives (the SDK layer).
 * - NODE_PATH is `/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task`,
 *   each mapped to its temporary folder, in that order.
 * - `/var/runtime/node_modules` holds the runtime's bundled SDK: only `@aws-sdk/*` at its top,
 *   its `@smithy/*` nested under `@aws-sdk/node_modules`, of a version older than ours that
 *   changes without notice. The hub takes nothing from it, so here every one of those
 *   packages throws when loaded: a `require` that falls through to the runtime fails the test
 *   instead of passing by luck of the version.
 * - The handler (`__index.handler`) is loaded by the runtime interface client's rules: the
 *   module imported by its absolute path (trying "", ".js", ".mjs", ".cjs"), the handler
 *   looked up on the module, then on its `default` (lambdaRuntime.mjs).
 * - Node 22, the runtime's version (lambdaNode.ts), whatever this machine runs.
 *
 * `flatLayout` is the old stand-in (the SDK's whole dependency closure on a flat NODE_PATH, on
 * this machine's Node), which no Lambda runtime offers: kept only for the benchmark's "before".
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { dependencyClosure } from "../../components/lambdaPackages";
import { lambdaNode } from "./lambdaNode";
import type { RecordedResource } from "./runProgram";

export const LAYER_TYPE = "aws:lambda/layerVersion:LayerVersion";

/** What the runtime's bundled SDK has at its top level that a handler could reach by name. */
export const RUNTIME_SDK_PACKAGES = [
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/client-sqs",
  "@aws-sdk/client-apigatewaymanagementapi",
  "@aws-sdk/client-ssm",
  "@aws-sdk/credential-provider-node",
];

/** A folder laid out as a zip (a function's or a layer's) unpacks. */
export interface Archive {
  dir: string;
  files: string[];
  /** Packages under node_modules (a function's zip) or nodejs/node_modules (a layer). */
  packages: string[];
  bytes: number;
  /** Deflate-compressed size plus zip headers: what the uploaded zip weighs. */
  zipBytes: number;
}

export interface Artifact extends Archive {
  /** The handler string the function is configured with (`__index.handler`). */
  handler: string;
  /** The function's layers, in order. */
  layers: Archive[];
}

function walk(dir: string, visit: (file: string) => void): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, visit);
    else if (entry.isFile()) visit(full);
  }
}

/** A zip's size: each file deflated plus its local and central headers, plus the end record. */
export const ZIP_END_BYTES = 22;
export function zipEntryBytes(relativePath: string, content: Buffer | string): number {
  return zlib.deflateRawSync(content).length + 30 + 46 + 2 * Buffer.byteLength(relativePath);
}

/** Packages directly under `modules` (scoped ones as `@scope/name`). */
function packagesIn(modules: string): string[] {
  if (!fs.existsSync(modules)) return [];
  return fs.readdirSync(modules).flatMap((name) => (name.startsWith("@") ? fs.readdirSync(path.join(modules, name)).map((inner) => `${name}/${inner}`) : name.startsWith(".") ? [] : [name]));
}

/** Writes a recorded archive (zip path → local file, or inline text) to a new folder. */
function writeArchive(code: NonNullable<RecordedResource["code"]>, prefix: string, packageRoot: string): Archive {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const [name, source] of Object.entries(code.files)) {
    if (path.normalize(name).startsWith("..") || path.isAbsolute(name)) throw new Error(`the archive places ${source} at ${name}, outside the zip: the function would not find it`);
    const target = path.join(dir, name);
    if (source === "<inline>") {
      if (name === "__index.js") fs.writeFileSync(target, code.indexJs);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.cpSync(source, target, { recursive: true, dereference: true });
  }
  const files: string[] = [];
  let bytes = 0;
  let zipBytes = ZIP_END_BYTES;
  walk(dir, (file) => {
    const content = fs.readFileSync(file);
    const relative = path.relative(dir, file);
    files.push(relative);
    bytes += content.length;
    zipBytes += zipEntryBytes(relative, content);
  });
  return { dir, files, packages: packagesIn(path.join(dir, packageRoot)).sort(), bytes, zipBytes };
}

/** The layers a function names (by ARN) among the run's recorded layers. */
function layersOf(fn: RecordedResource, recordedLayers: RecordedResource[]): RecordedResource[] {
  const arns = (fn.inputs.layers as string[] | undefined) ?? [];
  return arns.map((arn) => {
    const layerName = arn.split(":layer:")[1]?.split(":")[0];
    const layer = recordedLayers.find((l) => l.inputs.layerName === layerName);
    if (!layer) throw new Error(`${fn.name} names layer ${arn}, which the program did not declare`);
    return layer;
  });
}

const layerCache = new Map<RecordedResource, Archive>();

/**
 * The function's zip as a folder, and its layers. `run`: the program run that recorded it,
 * whose LayerVersions the function's `layers` name.
 */
export function writeArtifact(fn: RecordedResource, run?: { ofType(type: string): RecordedResource[] }): Artifact {
  if (!fn.code) throw new Error(`${fn.name} has no code archive`);
  const layers = layersOf(fn, run?.ofType(LAYER_TYPE) ?? []).map((layer) => {
    if (!layer.code) throw new Error(`layer ${layer.name} has no code archive`);
    let archive = layerCache.get(layer);
    if (!archive) layerCache.set(layer, (archive = writeArchive(layer.code, `layer-${layer.name}-`, "nodejs/node_modules")));
    return archive;
  });
  const archive = writeArchive(fn.code, `artifact-${fn.name}-`, "node_modules");
  return { ...archive, handler: String(fn.inputs.handler ?? "__index.handler"), layers };
}

/** Removes an artifact's folder and its layers' folders. */
export function removeArtifact(artifact: Artifact): void {
  for (const dir of [artifact.dir, ...artifact.layers.map((l) => l.dir)]) fs.rmSync(dir, { recursive: true, force: true });
}

/** How a fresh process runs a function: which Node, with which NODE_PATH, from which folder. */
export interface Layout {
  node: string;
  cwd: string;
  env: Record<string, string>;
  runner: string;
}

/**
 * What `/var/runtime/node_modules` holds:
 * - "poisoned" (the tests' default): the bundled SDK's layout, every package of it throwing
 *   when loaded, so nothing the hub needs may come from there;
 * - "bundled": a working SDK in the bundled layout (this checkout's versions, hard-linked), to
 *   show what code that relies on the runtime's SDK meets there (the benchmark's "before").
 */
export type RuntimeSdk = "poisoned" | "bundled";

const ROOT = path.resolve(__dirname, "../..");
const runtimeDirs = new Map<RuntimeSdk, string>();

/** `/var/runtime`: `@aws-sdk/*` at the top of its node_modules, everything they need nested under `@aws-sdk/node_modules`. */
function runtimeDir(kind: RuntimeSdk): string {
  const known = runtimeDirs.get(kind);
  if (known) return known;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lambda-var-runtime-${kind}-`));
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const name of dependencyClosure(RUNTIME_SDK_PACKAGES, ROOT)) {
    const where = name.startsWith("@aws-sdk/") ? path.join(dir, "node_modules", name) : path.join(dir, "node_modules", "@aws-sdk", "node_modules", name);
    fs.mkdirSync(path.dirname(where), { recursive: true });
    if (kind === "bundled") {
      // A copy of real files (hard links): a symlink would resolve from this checkout's flat node_modules.
      childProcess.execFileSync("cp", ["-al", path.join(ROOT, "node_modules", name), where]);
      continue;
    }
    fs.mkdirSync(where);
    fs.writeFileSync(path.join(where, "package.json"), JSON.stringify({ name, version: "0.0.0-runtime", main: "index.js" }));
    fs.writeFileSync(path.join(where, "index.js"), `throw new Error(${JSON.stringify(`loaded ${name} from the Lambda runtime's bundled SDK (/var/runtime), whose version changes without notice: it must come from the function's zip or its layer`)});\n`);
  }
  runtimeDirs.set(kind, dir);
  return dir;
}

function assertNoModulesAbove(dir: string): void {
  for (let up = path.dirname(dir); ; up = path.dirname(up)) {
    if (fs.existsSync(path.join(up, "node_modules"))) throw new Error(`${up}/node_modules would be found from the artifact at ${dir}, which /var/task never has: run the tests with TMPDIR elsewhere`);
    if (path.dirname(up) === up) return;
  }
}

/** The nodejs22.x runtime's layout for this artifact (see the header). */
export function lambdaLayout(artifact: Artifact, runtimeSdk: RuntimeSdk = "poisoned"): Layout {
  assertNoModulesAbove(artifact.dir);
  let opt = artifact.layers[0]?.dir;
  if (artifact.layers.length > 1) {
    // Layers unzip one over the other into /opt, in order.
    opt = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-opt-"));
    for (const layer of artifact.layers) fs.cpSync(layer.dir, opt, { recursive: true });
  }
  opt ??= fs.mkdtempSync(path.join(os.tmpdir(), "lambda-opt-"));
  const runtime = runtimeDir(runtimeSdk);
  const nodePath = [path.join(opt, "nodejs/node22/node_modules"), path.join(opt, "nodejs/node_modules"), path.join(runtime, "node_modules"), runtime, artifact.dir].join(path.delimiter);
  return {
    node: lambdaNode(),
    cwd: artifact.dir,
    runner: path.join(__dirname, "lambdaRuntime.mjs"),
    env: { NODE_PATH: nodePath, LAMBDA_TASK_ROOT: artifact.dir, LAMBDA_RUNTIME_DIR: runtime, AWS_EXECUTION_ENV: "AWS_Lambda_nodejs22.x" },
  };
}

let flatDir: string | undefined;

/** The old stand-in: the SDK's whole dependency closure on one flat NODE_PATH, this machine's Node. Benchmarks only. */
export function flatLayout(artifact: Artifact, projectDir: string): Layout {
  if (!flatDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-flat-"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    for (const name of dependencyClosure(RUNTIME_SDK_PACKAGES, projectDir)) {
      const source = path.join(projectDir, "node_modules", name);
      if (!fs.existsSync(source)) continue;
      const target = path.join(dir, "node_modules", name);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.symlinkSync(source, target, "dir");
    }
    flatDir = path.join(dir, "node_modules");
  }
  return { node: process.execPath, cwd: artifact.dir, runner: path.join(__dirname, "lambdaRuntime.mjs"), env: { NODE_PATH: flatDir } };
}

export interface Invocation {
  ok: boolean;
  value?: unknown;
  error?: string;
  /** Loading the handler's module (the init phase's `import`), in milliseconds. */
  requireMs: number;
  logs: string;
}

/** As an event: only load the handler (a cold start's init phase), invoke nothing. */
export const LOAD_ONLY: unique symbol = Symbol("load only");

/** Loads the function in a fresh process laid out as `layout` (default: as on Lambda), invokes it once with `event`. */
export function invokeArtifact(artifact: Artifact, event: unknown, env: Record<string, string>, layout: Layout = lambdaLayout(artifact)): Promise<Invocation> {
  const eventFile = event === LOAD_ONLY ? "-" : path.join(os.tmpdir(), `event-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  if (event !== LOAD_ONLY) fs.writeFileSync(eventFile, JSON.stringify(event));
  return new Promise((resolve, reject) => {
    childProcess.execFile(
      layout.node,
      [layout.runner, artifact.dir, artifact.handler, eventFile],
      {
        cwd: layout.cwd,
        env: {
          PATH: process.env.PATH ?? "",
          AWS_REGION: "eu-west-1",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...layout.env,
          ...env,
        },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        if (event !== LOAD_ONLY) fs.rmSync(eventFile, { force: true });
        const marker = stdout.lastIndexOf("@@RESULT ");
        if (marker < 0) {
          reject(new Error(`artifact did not run: ${error?.message ?? ""}\n${stderr}\n${stdout}`));
          return;
        }
        const result = JSON.parse(stdout.slice(marker + 9).trim()) as Omit<Invocation, "logs">;
        resolve({ ...result, logs: stdout.slice(0, marker) + stderr });
      },
    );
  });
}
