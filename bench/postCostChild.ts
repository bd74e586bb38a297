/**
 * One round of post-cost in this fresh process, for bench/postCostLayout.ts. With
 * SDK_LAYER_DIR set (a folder laid out as the SDK layer's nodejs/node_modules), a bare require
 * of a layer package resolves inside that folder, as /opt/nodejs/node_modules would on Lambda;
 * the hook goes in before anything loads the SDK. Prints post-cost's figures as one JSON line.
 * Usage: node -r ts-node/register/transpile-only bench/postCostChild.ts <posts>
 */
import Module = require("module");
import * as path from "path";
import { LAYER_PACKAGES } from "../handlers/manifest";

const layerDir = process.env.SDK_LAYER_DIR;
if (layerDir) {
  const internals = Module as unknown as { _resolveFilename(request: string, parent: unknown, isMain?: boolean, options?: { paths: string[] }): string };
  const resolve = internals._resolveFilename.bind(Module);
  internals._resolveFilename = (request, parent, isMain, options) => {
    const packageName = request.startsWith("@") ? request.split("/").slice(0, 2).join("/") : request.split("/")[0];
    return resolve(request, parent, isMain, LAYER_PACKAGES.includes(packageName) ? { paths: [layerDir] } : options);
  };
}

async function main(posts: number): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { postCostScenario } = require("./postCost") as typeof import("./postCost");
  const figures = await postCostScenario(posts, 1);
  // Where the signer came from: the layer's copy alone when SDK_LAYER_DIR is set.
  const signers = Object.keys(require.cache).filter((file) => file.includes(`${path.sep}@smithy${path.sep}signature-v4${path.sep}`));
  if (layerDir && (signers.length === 0 || signers.some((file) => !file.startsWith(layerDir)))) throw new Error(`the signer loaded from ${signers.join(", ")}, not the layer alone`);
  process.stdout.write(JSON.stringify({ hub_us_per_post: figures.hub_us_per_post, hub_vs_floor: figures.hub_vs_floor, signers }) + "\n");
}

main(Number(process.argv[2])).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
