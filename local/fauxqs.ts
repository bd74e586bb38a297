/**
 * Loads fauxqs with SQS's own character rule. SQS accepts a body made of #x9 | #xA | #xD |
 * #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF (code points, so any emoji), and
 * refuses the rest (U+FFFE, U+FFFF, lone surrogates, other control characters) with
 * InvalidMessageContents. fauxqs tests its body regex without the `u` flag, so it sees each half
 * of an emoji's surrogate pair alone and refuses every character past U+FFFF. We replace that
 * regex's `test` on the one module instance fauxqs's actions use; nothing on disk changes.
 */
import * as fs from "fs";
import * as path from "path";
import { pathToFileURL } from "url";
import { SQS_REFUSED_CHARACTER } from "../core/messages";

/** What fauxqs's sqsTypes module exports and we fix. */
const TYPES_MODULE = "dist/sqs/sqsTypes.js";
const REGEX_EXPORT = "INVALID_MESSAGE_BODY_CHAR";

type Fauxqs = typeof import("fauxqs", { with: { "resolution-mode": "import" } });

let loading: Promise<Fauxqs> | undefined;

function packageDir(): string {
  // fauxqs exports only its ES entry, so require.resolve cannot name its files: look where Node would.
  const dirs = (require.resolve.paths("fauxqs") ?? []).map((dir) => path.join(dir, "fauxqs"));
  const found = dirs.find((dir) => fs.existsSync(path.join(dir, TYPES_MODULE)));
  if (!found) throw new Error(`fauxqs changed: ${TYPES_MODULE} not found (looked in ${dirs.join(", ")}); check local/fauxqs.ts`);
  return fs.realpathSync(found);
}

async function load(): Promise<Fauxqs> {
  // fauxqs is an ES module; with module "node16" this stays a real import() in CommonJS output.
  const fauxqs = await import("fauxqs");
  const types = (await import(pathToFileURL(path.join(packageDir(), TYPES_MODULE)).href)) as Record<string, unknown>;
  const regex = types[REGEX_EXPORT];
  if (!(regex instanceof RegExp)) throw new Error(`fauxqs changed: ${TYPES_MODULE} no longer exports ${REGEX_EXPORT}; check local/fauxqs.ts`);
  Object.defineProperty(regex, "test", { value: (text: string) => SQS_REFUSED_CHARACTER.test(text), configurable: true });
  return fauxqs;
}

/** fauxqs, its message-body check made SQS's own (once per process). */
export function loadFauxqs(): Promise<Fauxqs> {
  return (loading ??= load());
}
