/**
 * Scenario 3, Lambda artifacts: each function of the development stack serialized under
 * Pulumi's mocks, laid out as in its zip, its zip size (deflate plus zip headers) and a cold
 * load of its handler in a fresh process (median of 5, rounds alternated), side by side:
 * - before: the functions of BEFORE_LAYER_COMMIT (the AWS SDK taken from the runtime), in the
 *   flat layout the tests used then (the SDK's whole dependency closure on NODE_PATH, this
 *   machine's Node), where that code loads; and whether it loads at all in the runtime's real
 *   layout (test/support/artifacts.ts lambdaLayout);
 * - after: today's functions with the SDK layer, in the same flat layout (same Node: the
 *   packaging's own effect) and in the runtime's layout on Node 22 (what Lambda runs).
 *
 * The deliver function is also compared with the one of the baseline commit (the target
 * "not worse than before the signed post path by more than 10%"), measured the same way in the same run: that
 * commit's tree from git, its own program, under the same compiler options (comments removed,
 * as tsconfig.json now says), and the two cold requires alternated so load hits both alike.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { flatLayout, invokeArtifact, lambdaLayout, LOAD_ONLY, removeArtifact, writeArtifact, zipEntryBytes, ZIP_END_BYTES, type Artifact, type Layout } from "../test/support/artifacts";
import { runProgram, stackConfig, type ProgramRun } from "../test/support/pulumiRun";
import { treeAt } from "./gitTree";
import { median, note } from "./lib";

const ROOT = path.resolve(__dirname, "..");
/** The last commit before the signed post path (core/connections.ts): the deliver zip the size target compares with. */
export const BASELINE_COMMIT = "e72dac0";
/** The last commit before the SDK layer: its functions took the AWS SDK from the Lambda runtime. */
export const BEFORE_LAYER_COMMIT = "5fb2ab6";
const REQUIRE_RUNS = 5;

export interface ArtifactRow {
  function: string;
  /** Today's function zip (the SDK is in the layer, counted once in `layerZipKiB`). */
  zipKiB: number;
  files: number;
  /** Today's, in the runtime's layout on Node 22. */
  requireMs: number;
  /** Today's, in the old flat layout on this machine's Node: the packaging's effect alone. */
  flatRequireMs: number;
  before: {
    zipKiB: number;
    /** In the flat layout, where that code loads. */
    requireMs: number;
    /** What loading it in the runtime's layout said: "loads", or the error. */
    onLambda: string;
  };
}

export interface ArtifactsFigures {
  rows: ArtifactRow[];
  beforeCommit: string;
  layerZipKiB: number;
  layerFiles: number;
  layerPackages: number;
  /** Node versions: this machine's (flat) and the runtime's (Lambda layout). */
  node: { flat: string; lambda: string };
  deliverVsBaseline?: DeliverVsBaseline;
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

/** A cold load of the function's handler in a fresh process laid out as `layout`. */
async function loadMs(artifact: Artifact, env: Record<string, string>, layout: Layout): Promise<number> {
  const loaded = await invokeArtifact(artifact, LOAD_ONLY, env, layout);
  if (!loaded.ok) throw new Error(`${artifact.dir} did not load: ${loaded.error}`);
  return loaded.requireMs;
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

async function compareDeliver(current: Artifact, currentEnv: Record<string, string>): Promise<DeliverVsBaseline | undefined> {
  const tree = treeAt(BASELINE_COMMIT, note);
  if (!tree) return undefined;
  const made: Artifact[] = [];
  try {
    const asBuilt = await deliverOf(tree);
    made.push(asBuilt.artifact);
    const base = await deliverOf(tree, { TS_NODE_COMPILER_OPTIONS: JSON.stringify({ removeComments: true }) });
    made.push(base.artifact);
    // Both in the flat layout, where the baseline's code loads (it predates the SDK layer).
    const baseTimes: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < REQUIRE_RUNS; i++) {
      baseTimes.push(await loadMs(base.artifact, base.env, flatLayout(base.artifact, ROOT)));
      times.push(await loadMs(current, currentEnv, flatLayout(current, ROOT)));
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
    for (const artifact of made) removeArtifact(artifact);
    fs.rmSync(tree, { recursive: true, force: true });
  }
}

/** The development stack's functions of a program run, by handler name. */
function functionsOf(run: ProgramRun): Map<string, { artifact: Artifact; env: Record<string, string> }> {
  return new Map(run.ofType("aws:lambda/function:Function").map((fn) => [fn.name.replace(/^hub-/, ""), { artifact: writeArtifact(fn, run), env: envOf(fn) }]));
}

/** "loads", or the first line of what loading it in the runtime's layout said (with a working SDK in the runtime's bundled layout). */
async function loadsOnLambda(artifact: Artifact, env: Record<string, string>): Promise<string> {
  const loaded = await invokeArtifact(artifact, LOAD_ONLY, env, lambdaLayout(artifact, "bundled"));
  return loaded.ok ? "loads" : (loaded.error ?? "failed").split("\n")[0];
}

export async function artifactsScenario(): Promise<ArtifactsFigures> {
  console.error(`\n[artifacts] serializing the development stack, today's and ${BEFORE_LAYER_COMMIT}'s, and timing a cold load of each Lambda`);
  const now = functionsOf(await runProgram("index.ts", "development", stackConfig("development")));
  const beforeTree = treeAt(BEFORE_LAYER_COMMIT, note);
  const before = beforeTree ? functionsOf(await runProgram("index.ts", "development", stackConfig("development", beforeTree), beforeTree)) : new Map<string, { artifact: Artifact; env: Record<string, string> }>();
  const rows: ArtifactRow[] = [];
  let deliverVsBaseline: DeliverVsBaseline | undefined;
  const layer = [...now.values()][0].artifact.layers[0];
  const lambdaNodeVersion = childProcess.execFileSync(lambdaLayout([...now.values()][0].artifact).node, ["--version"], { encoding: "utf8" }).trim();
  try {
    for (const [name, { artifact, env }] of now) {
      const old = before.get(name);
      const times = { lambda: [] as number[], flat: [] as number[], before: [] as number[] };
      for (let i = 0; i < REQUIRE_RUNS; i++) {
        if (old) times.before.push(await loadMs(old.artifact, old.env, flatLayout(old.artifact, ROOT)));
        times.flat.push(await loadMs(artifact, env, flatLayout(artifact, ROOT)));
        times.lambda.push(await loadMs(artifact, env, lambdaLayout(artifact)));
      }
      const ms = (values: number[]) => (values.length ? Math.round(median(values) * 10) / 10 : NaN);
      const row: ArtifactRow = {
        function: name,
        zipKiB: kib(artifact.zipBytes),
        files: artifact.files.length,
        requireMs: ms(times.lambda),
        flatRequireMs: ms(times.flat),
        before: { zipKiB: old ? kib(old.artifact.zipBytes) : NaN, requireMs: ms(times.before), onLambda: old ? await loadsOnLambda(old.artifact, old.env) : "n/a" },
      };
      rows.push(row);
      note(`${name}: zip ${row.before.zipKiB} → ${row.zipKiB} KiB; cold load before ${row.before.requireMs} ms (flat), after ${row.flatRequireMs} ms (flat) / ${row.requireMs} ms (Lambda layout, ${lambdaNodeVersion}); before on Lambda: ${row.before.onLambda}`);
      if (name === "deliver") deliverVsBaseline = await compareDeliver(artifact, env);
    }
  } finally {
    for (const { artifact } of [...now.values(), ...before.values()]) removeArtifact(artifact);
    if (beforeTree) fs.rmSync(beforeTree, { recursive: true, force: true });
  }
  note(`SDK layer: ${layer.packages.length} packages, ${layer.files.length} files, zip ${kib(layer.zipBytes)} KiB, one per hub`);
  return {
    rows,
    beforeCommit: BEFORE_LAYER_COMMIT,
    layerZipKiB: kib(layer.zipBytes),
    layerFiles: layer.files.length,
    layerPackages: layer.packages.length,
    node: { flat: process.version, lambda: lambdaNodeVersion },
    deliverVsBaseline,
  };
}
