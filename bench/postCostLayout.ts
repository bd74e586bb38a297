/**
 * Scenario `post-cost-layout`: does loading the AWS SDK from the hub's layer change what a
 * post costs? The post path's client CPU (post-cost's hub path, and its ratio to unsigned
 * posts measured in the same process) in fresh processes, rounds alternated:
 * - flat: the SDK resolved from this checkout's node_modules, this machine's Node (how the
 *   post path was measured before the layer);
 * - layer: `LAYER_PACKAGES` resolved from a folder laid out as the SDK layer (sdkLayerContents),
 *   everything they require from inside it, same Node;
 * - layer, Node 22: the same on the Lambda runtime's Node version.
 *
 * Each round runs bench/postCostChild.ts in a fresh process.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { sdkLayerContents } from "../components/lambdaPackages";
import { lambdaNode } from "../test/support/lambdaNode";
import { median, note } from "./lib";

const ROOT = path.resolve(__dirname, "..");
const LAYOUTS = ["flat", "layer", "layer-node22"] as const;
type LayoutName = (typeof LAYOUTS)[number];

export interface PostCostLayoutFigures {
  posts: number;
  rounds: number;
  /** Median µs of client CPU per post, and hub / unsigned posts in the same process. */
  layouts: Record<LayoutName, { node: string; hub_us_per_post: number; hub_vs_floor: number; rounds_us: number[] }>;
  /** layer / flat, same Node: the layer's own effect. */
  layer_vs_flat: number;
}

/** The SDK layer's files copied to a folder (its `nodejs/node_modules`). */
function writeLayer(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sdk-layer-"));
  for (const [to, from] of Object.entries(sdkLayerContents(ROOT).files)) {
    fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    fs.copyFileSync(from, path.join(dir, to));
  }
  return path.join(dir, "nodejs", "node_modules");
}

function runChild(layout: LayoutName, posts: number, layerDir: string): { hub_us_per_post: number; hub_vs_floor: number } {
  const node = layout === "layer-node22" ? lambdaNode() : process.execPath;
  const output = childProcess.execFileSync(node, ["-r", "ts-node/register/transpile-only", path.join(__dirname, "postCostChild.ts"), String(posts)], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...(layout === "flat" ? {} : { SDK_LAYER_DIR: layerDir }) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(output.trim().split("\n").pop()!) as { hub_us_per_post: number; hub_vs_floor: number };
}

export function postCostLayoutScenario(posts: number, rounds: number): PostCostLayoutFigures {
  const layerDir = writeLayer();
  const values: Record<LayoutName, { us: number[]; ratio: number[] }> = { flat: { us: [], ratio: [] }, layer: { us: [], ratio: [] }, "layer-node22": { us: [], ratio: [] } };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const layout of [...LAYOUTS.slice(round % LAYOUTS.length), ...LAYOUTS.slice(0, round % LAYOUTS.length)]) {
        const figures = runChild(layout, posts, layerDir);
        values[layout].us.push(figures.hub_us_per_post);
        values[layout].ratio.push(figures.hub_vs_floor);
      }
    }
  } finally {
    fs.rmSync(path.dirname(path.dirname(layerDir)), { recursive: true, force: true });
  }
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const nodeOf = (layout: LayoutName) => (layout === "layer-node22" ? childProcess.execFileSync(lambdaNode(), ["--version"], { encoding: "utf8" }).trim() : process.version);
  const layouts = Object.fromEntries(
    LAYOUTS.map((layout) => [layout, { node: nodeOf(layout), hub_us_per_post: round2(median(values[layout].us)), hub_vs_floor: round2(median(values[layout].ratio)), rounds_us: values[layout].us.map(round2) }]),
  ) as PostCostLayoutFigures["layouts"];
  note(`post cost by layout (µs per post, rounds): ${LAYOUTS.map((l) => `${l} ${layouts[l].rounds_us.join(", ")}`).join("; ")}`);
  return { posts, rounds, layouts, layer_vs_flat: round2(layouts.layer.hub_us_per_post / layouts.flat.hub_us_per_post) };
}
