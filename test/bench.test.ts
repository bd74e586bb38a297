/** Where `npm run bench` writes (bench/outputs.ts): a run leaves a clone's tracked files alone unless asked. */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { benchOutputs } from "../bench/outputs";

const ROOT = process.cwd();
const git = (args: string[]) => childProcess.spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });
const tracked = (file: string) => git(["ls-files", "--error-unmatch", path.relative(ROOT, file)]).status === 0;
const ignored = (file: string) => git(["check-ignore", "-q", path.relative(ROOT, file)]).status === 0;

describe("benchmark outputs", () => {
  it("bench leaves the tree clean: without --update-docs every file a run writes is git-ignored, full or quick", () => {
    for (const quick of [false, true]) {
      const outputs = benchOutputs({ quick, updateDocs: false });
      expect(outputs.benchmarksMd).toBeUndefined();
      for (const file of [outputs.results, outputs.chart]) {
        expect(tracked(file), file).toBe(false);
        expect(ignored(file), file).toBe(true);
      }
    }
  });

  it("--update-docs writes the published files: results, chart, and BENCHMARKS.md after a full run", () => {
    const full = benchOutputs({ quick: false, updateDocs: true });
    expect([full.results, full.chart, full.benchmarksMd].map((file) => path.relative(ROOT, file!))).toEqual(["bench/results.json", "bench/chart.svg", "BENCHMARKS.md"]);
    const quick = benchOutputs({ quick: true, updateDocs: true });
    expect(path.relative(ROOT, quick.results)).toBe("bench/results.quick.json");
    expect(quick.benchmarksMd).toBeUndefined();
    for (const file of [full.results, full.chart, full.benchmarksMd!, quick.results]) expect(tracked(file), file).toBe(true);
  });

  it("BENCHMARKS.md and bench/run.ts's usage name exactly the scenarios --only accepts", () => {
    // run.ts runs on import: its SCENARIOS are read from its text.
    const run = fs.readFileSync(path.join(ROOT, "bench/run.ts"), "utf8");
    const scenarios = JSON.parse(`[${/const SCENARIOS = \[([^\]]*)\]/.exec(run)![1]}]`) as string[];
    expect(scenarios.length).toBeGreaterThan(10);
    const usage = /--only fanout,connect one or more of: (.*)/.exec(run)![1].split(", ");
    expect(usage).toEqual(scenarios);
    const md = fs.readFileSync(path.join(ROOT, "BENCHMARKS.md"), "utf8").replace(/\s+/g, " ");
    const listed = /picks one or more of the scenarios `bench\/run.ts` knows \(([^;]*);/.exec(md)![1].split(", ").map((name) => name.replace(/`/g, ""));
    expect(listed).toEqual(scenarios);
  });
});
