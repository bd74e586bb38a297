/**
 * Each handler's entry point, found by convention from its manifest name: module
 * `handlers/<name>` exporting `<name>FromEnvironment`, called with no argument on Lambda (it
 * reads process.env) and with a HandlerSource by the local hub. So adding a handler is one
 * manifest entry and one module, and the manifest stays data only.
 *
 * Loaded with Node's own `require`, never through a bundler's or vitest's transform: the
 * component's CallbackFunction serializes the function by finding its module in
 * require.cache, and the local hub runs the very same module. Under ts-node (`npm run dev`,
 * Pulumi programs in TypeScript) that resolves `<name>.ts`, under dist/ `<name>.js`; vitest
 * registers ts-node for Node's require in test/support/nodeRequireTs.ts.
 */
import * as path from "path";
import type { HandlerSource } from "./dependencies";
import type { HandlerName } from "./manifest";

export type EntryPoint = (source?: HandlerSource) => (event: never) => Promise<unknown>;

/** The export the convention expects of `handlers/<name>`. */
export function entryPointExport(name: string): string {
  return `${name}FromEnvironment`;
}

/**
 * The entry point of `name`, or an error naming the handler and the file and export it
 * expected. `directory` is for tests (a fixture folder); the hub's handlers live next to this file.
 */
export function loadEntryPoint(name: HandlerName, directory: string = __dirname): EntryPoint {
  const file = path.join(directory, name);
  const exportName = entryPointExport(name);
  const expected = `handler "${name}" of handlers/manifest.ts needs a module ${file} (.ts or .js) exporting ${exportName}`;
  let exports: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    exports = require(file) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Only the module itself missing is our message; an error inside it (or a package it needs) stays as it is.
    if (code === "MODULE_NOT_FOUND" && (err as Error).message.includes(`'${file}'`)) throw new Error(`${expected}: no such module`, { cause: err });
    throw err;
  }
  const entryPoint = exports[exportName];
  if (typeof entryPoint !== "function") throw new Error(`${expected}: it exports ${Object.keys(exports).join(", ") || "nothing"}`);
  return entryPoint as EntryPoint;
}
