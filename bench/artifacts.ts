/**
 * Scenario 3, Lambda artifacts: each function of the development stack serialized under
 * Pulumi's mocks, laid out as in its zip, its zip size (deflate plus zip headers) and a cold
 * `require` in a fresh Node process with the runtime's AWS SDK on NODE_PATH (median of 5).
 *
 * The deliver function is also compared with the one of the baseline commit (the target
 * "not worse than before the signed post path by more than 10%"), measured the same way in the same run: that
 * commit's tree from git, its own program, under the same compiler options (comments removed,
 * as tsconfig.json now says), and the two cold requires alternated so load hits both alike.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { lambdaRuntimeModules, writeArtifact, zipEntryBytes, ZIP_END_BYTES, type Artifact } from "../test/support/artifacts";
import { runProgram, stackConfig } from "../test/support/pulumiRun";
import { median, note } from "./lib";

const ROOT = path.resolve(__dirname, "..");
/** The last commit before the signed post path (core/connections.ts): the deliver zip the size target compares with. */
export const BASELINE_COMMIT = "e72dac0";
const REQUIRE_RUNS = 5;

export interface ArtifactRow {
  function: string;
  zipKiB: number;
  files: number;
  requireMs: number;
}

export interface DeliverVsBaseline {
  commit: string;
  /** The baseline's deliver as it was built then (comments in) and under today's options. */
  baselineZipKiBAsBuilt: number;
  baselineZipKiB: number;
  zipKiB: number;
  zipRatio: number;
  baselineRequireMs: number;
  requireMs: number;
  requireRatio: number;
  /**
   * Today's deliver `__index.js` through a minifier (terser: compress and mangle) after Pulumi
   * serialized it: not what we ship (Lambdas are serialized by Pulumi's CallbackFunction, with no bundler step), but the floor any
   * minifying tool could reach without removing features.
   */
  minifiedZipKiB: number;
  minifiedZipRatio: number;
}

const kib = (bytes: number) => Math.round(bytes / 102.4) / 10;

function requireMs(artifact: Artifact, env: Record<string, string>, modules: string): number {
  const output = childProcess.execFileSync(process.execPath, [path.join(__dirname, "requireArtifact.js"), artifact.dir], {
    env: { PATH: process.env.PATH ?? "", NODE_PATH: modules, AWS_REGION: "eu-west-1", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
    encoding: "utf8",
  });
  return Number(output.trim());
}

const envOf = (fn: { inputs: Record<string, unknown> }) => ({ ...(fn.inputs as { environment: { variables: Record<string, string> } }).environment.variables, JWT_SECRET: "x" });

/** The values of a stack file alone: the baseline's Pulumi.yaml predates today's config rules. */
function stackFileConfig(projectDir: string): Record<string, string> {
  const file = yaml.load(fs.readFileSync(path.join(projectDir, "Pulumi.development.yaml"), "utf8")) as { config?: Record<string, unknown> };
  return Object.fromEntries(Object.entries(file.config ?? {}).map(([key, value]) => [key, String(value)]));
}

/** The development stack's deliver function of `projectDir`, serialized and laid out. */
async function deliverOf(projectDir: string, env: Record<string, string> = {}) {
  const run = await runProgram("index.ts", "development", projectDir === ROOT ? stackConfig("development") : stackFileConfig(projectDir), projectDir, { env });
  const fn = run.ofType("aws:lambda/function:Function").find((f) => f.name === "hub-deliver");
  if (!fn) throw new Error(`no hub-deliver in ${projectDir}`);
  return { artifact: writeArtifact(fn), env: envOf(fn) };
}

/** The baseline commit's tree, with this checkout's node_modules; undefined when git cannot give it. */
function baselineTree(): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-baseline-"));
  try {
    childProcess.execSync(`git archive ${BASELINE_COMMIT} | tar -x -C ${JSON.stringify(dir)}`, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    return dir;
  } catch (err) {
    note(`baseline ${BASELINE_COMMIT} not available (${(err as Error).message.split("\n")[0]}): deliver not compared`);
    fs.rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** The artifact's zip with its one file, `__index.js`, minified (it has no packages: checked). */
async function minifiedZipBytesOf(artifact: Artifact): Promise<number> {
  if (artifact.files.length !== 1) throw new Error(`deliver has ${artifact.files.length} files; the minified figure assumes __index.js alone`);
  const source = fs.readFileSync(path.join(artifact.dir, "__index.js"), "utf8");
  // terser's types are ESM-only; a dynamic import loads it from this CommonJS module.
  const { minify } = await import("terser");
  const { code } = await minify(source, { compress: true, mangle: true });
  if (!code) throw new Error("terser returned no code for deliver's __index.js");
  return ZIP_END_BYTES + zipEntryBytes("__index.js", code);
}

async function compareDeliver(current: Artifact, currentEnv: Record<string, string>, modules: string): Promise<DeliverVsBaseline | undefined> {
  const tree = baselineTree();
  if (!tree) return undefined;
  const made: Artifact[] = [];
  try {
    const asBuilt = await deliverOf(tree);
    made.push(asBuilt.artifact);
    const base = await deliverOf(tree, { TS_NODE_COMPILER_OPTIONS: JSON.stringify({ removeComments: true }) });
    made.push(base.artifact);
    const baseTimes: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < REQUIRE_RUNS; i++) {
      baseTimes.push(requireMs(base.artifact, base.env, modules));
      times.push(requireMs(current, currentEnv, modules));
    }
    const minifiedZipBytes = await minifiedZipBytesOf(current);
    const figures: DeliverVsBaseline = {
      commit: BASELINE_COMMIT,
      baselineZipKiBAsBuilt: kib(asBuilt.artifact.zipBytes),
      baselineZipKiB: kib(base.artifact.zipBytes),
      zipKiB: kib(current.zipBytes),
      zipRatio: Math.round((current.zipBytes / base.artifact.zipBytes) * 100) / 100,
      baselineRequireMs: Math.round(median(baseTimes) * 10) / 10,
      requireMs: Math.round(median(times) * 10) / 10,
      requireRatio: Math.round((median(times) / median(baseTimes)) * 100) / 100,
      minifiedZipKiB: kib(minifiedZipBytes),
      minifiedZipRatio: Math.round((minifiedZipBytes / base.artifact.zipBytes) * 100) / 100,
    };
    note(
      `deliver vs ${BASELINE_COMMIT}: zip ${figures.zipKiB} / ${figures.baselineZipKiB} KiB (${figures.zipRatio}×; baseline as built then ${figures.baselineZipKiBAsBuilt} KiB), ` +
        `cold require ${figures.requireMs} / ${figures.baselineRequireMs} ms (${figures.requireRatio}×, alternated, medians of ${REQUIRE_RUNS}); ` +
        `minified ${figures.minifiedZipKiB} KiB (${figures.minifiedZipRatio}×)`,
    );
    return figures;
  } finally {
    for (const artifact of made) fs.rmSync(artifact.dir, { recursive: true, force: true });
    fs.rmSync(tree, { recursive: true, force: true });
  }
}

export async function artifactsScenario(): Promise<{ rows: ArtifactRow[]; deliverVsBaseline?: DeliverVsBaseline }> {
  console.error("\n[artifacts] serializing the development stack and timing a cold require of each Lambda");
  const run = await runProgram("index.ts", "development", stackConfig("development"));
  const modules = lambdaRuntimeModules(ROOT);
  const rows: ArtifactRow[] = [];
  let deliverVsBaseline: DeliverVsBaseline | undefined;
  for (const fn of run.ofType("aws:lambda/function:Function")) {
    const artifact = writeArtifact(fn);
    try {
      const times = Array.from({ length: REQUIRE_RUNS }, () => requireMs(artifact, envOf(fn), modules));
      rows.push({ function: fn.name.replace(/^hub-/, ""), zipKiB: kib(artifact.zipBytes), files: artifact.files.length, requireMs: Math.round(median(times) * 10) / 10 });
      note(`${fn.name}: zip ${(artifact.zipBytes / 1024).toFixed(1)} KiB, cold require ${median(times).toFixed(1)} ms (median of ${REQUIRE_RUNS})`);
      if (fn.name === "hub-deliver") deliverVsBaseline = await compareDeliver(artifact, envOf(fn), modules);
    } finally {
      fs.rmSync(artifact.dir, { recursive: true, force: true });
    }
  }
  return { rows, deliverVsBaseline };
}
