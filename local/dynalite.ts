/**
 * Loads dynalite with fixes that make it measure and key items as DynamoDB does. We compile
 * dynalite's db module with these edits; nothing on disk changes.
 *
 * - Index keys: dynalite keys global-secondary-index entries by the index key plus only 6 hex
 *   digits (24 bits) of an MD5 of the item's table key, so items of one index partition
 *   collide and overwrite each other: in a room of 10,000 connections about three vanish from
 *   the room's index, and the local hub would never deliver to them. Real DynamoDB has no such
 *   limit: the full digest.
 * - Sizes in UTF-8: DynamoDB measures an item (its 400 KB limit) and a key (2,048 bytes for a
 *   partition key, 1,024 for a sort key) in UTF-8 bytes of attribute names and string values;
 *   dynalite counts UTF-16 units, so a row of CJK room ids passed 400 KB locally and failed on AWS.
 */
import * as fs from "fs";
import Module = require("module");

/** Each edit of dynalite/db/index.js: the text as dynalite has it, and what it becomes. */
const PATCHES: { what: string; from: string; to: string }[] = [
  { what: "the index-key hash", from: ".digest('hex').slice(0, 6)", to: ".digest('hex')" },
  // valSize: a string's size.
  { what: "string sizes in UTF-8", from: "case 'S':\n    return val.length\n", to: "case 'S':\n    return Buffer.byteLength(val, 'utf8')\n" },
  // itemSize: an attribute name's size.
  { what: "attribute-name sizes in UTF-8", from: "(compress ? 1 : attr.length)", to: "(compress ? 1 : Buffer.byteLength(attr, 'utf8'))" },
  // checkKeySize: a string key's size.
  { what: "key sizes in UTF-8", from: "if (type == 'B') keyPiece = Buffer.from(keyPiece, 'base64')\n", to: "keyPiece = type == 'B' ? Buffer.from(keyPiece, 'base64') : Buffer.from(keyPiece, 'utf8')\n" },
];

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
      let source = fs.readFileSync(filename, "utf8");
      for (const patch of PATCHES) {
        // Every edit or no dynalite: one missing means dynalite changed, and the local hub would be laxer than AWS.
        const pieces = source.split(patch.from);
        if (pieces.length < 2) throw new Error(`dynalite changed: ${patch.what} could not be patched; check local/dynalite.ts`);
        source = pieces.join(patch.to);
      }
      module._compile(source, filename);
    };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("dynalite") as Dynalite;
}
