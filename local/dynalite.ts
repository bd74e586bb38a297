/**
 * Loads dynalite with one fix. dynalite keys global-secondary-index entries by the index key
 * plus only 6 hex digits (24 bits) of an MD5 of the item's table key, so items of one index
 * partition collide and overwrite each other: in a room of 10,000 connections about three
 * vanish from the room's index, and the local hub would never deliver to them. Real
 * DynamoDB has no such limit. We compile dynalite's db module with the full digest instead;
 * nothing on disk changes.
 */
import * as fs from "fs";
import Module = require("module");

const TRUNCATED = ".digest('hex').slice(0, 6)";
const FULL = ".digest('hex')";

interface DynaliteServer {
  listen(port: number, host: string, callback: () => void): void;
  address(): { port: number };
  close(callback?: (err?: Error) => void): void;
}
export type Dynalite = (options: object) => DynaliteServer;

type CompilableModule = NodeJS.Module & { _compile(source: string, filename: string): void };
type Loader = (module: CompilableModule, filename: string) => void;

let patched = false;

export function loadDynalite(): Dynalite {
  if (!patched) {
    patched = true;
    const target = require.resolve("dynalite/db/index.js");
    const extensions = (Module as unknown as { _extensions: Record<string, Loader> })._extensions;
    const original = extensions[".js"];
    extensions[".js"] = (module, filename) => {
      if (filename !== target) return original(module, filename);
      const source = fs.readFileSync(filename, "utf8");
      if (!source.includes(TRUNCATED)) {
        process.emitWarning("dynalite changed: its index-key hash was not patched; check local/dynalite.ts");
        return original(module, filename);
      }
      module._compile(source.split(TRUNCATED).join(FULL), filename);
    };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("dynalite") as Dynalite;
}
