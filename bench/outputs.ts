/**
 * Where a benchmark run writes. By default nothing git tracks: figures go to
 * bench/results.local.json (bench/results.quick.local.json for --quick) and the chart to
 * bench/chart.local.svg, all git-ignored, so a run leaves a clone clean. With --update-docs
 * a run refreshes the published files instead: bench/results.json (results.quick.json),
 * bench/chart.svg and, after a full run, the figures in BENCHMARKS.md.
 */
import * as path from "path";

export interface BenchOutputs {
  /** The figures (merged with the file's earlier ones, so `--only` runs add up). */
  results: string;
  /** The chart, drawn by full runs of the fanout scenario. */
  chart: string;
  /** BENCHMARKS.md, rewritten from `results` when set (full runs with --update-docs). */
  benchmarksMd?: string;
}

export function benchOutputs(options: { quick: boolean; updateDocs: boolean }, benchDir = __dirname): BenchOutputs {
  const quick = options.quick ? ".quick" : "";
  if (!options.updateDocs) {
    return { results: path.join(benchDir, `results${quick}.local.json`), chart: path.join(benchDir, "chart.local.svg") };
  }
  return {
    results: path.join(benchDir, `results${quick}.json`),
    chart: path.join(benchDir, "chart.svg"),
    ...(options.quick ? {} : { benchmarksMd: path.join(benchDir, "..", "BENCHMARKS.md") }),
  };
}
