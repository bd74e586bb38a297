// Loads and invokes a function the way AWS Lambda's Node.js runtime interface client does
// (aws-lambda-nodejs-runtime-interface-client, src/function/: module-loader, handler-resolver),
// in this fresh process, and prints the result on the last line.
// Usage: node lambdaRuntime.mjs <task-dir> <handler, e.g. __index.handler> <event-json-file | ->
// With "-" for the event it only loads the handler (a cold start's init phase).
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

const [taskDir, handlerString, eventFile] = process.argv.slice(2);

/** "dir/module.nested.fn" → module root "dir/", module "module", handler "nested.fn". */
function parseHandler(full) {
  const base = path.basename(full);
  const moduleRoot = full.slice(0, full.indexOf(base));
  const match = base.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new Error(`Bad handler ${full}`);
  return { moduleRoot, moduleName: match[1], handlerName: match[2] };
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const full = path.resolve(appRoot, moduleRoot, moduleName);
  for (const extension of ["", ".js", ".mjs", ".cjs"]) {
    if (existsSync(full + extension)) return import(full + extension);
  }
  throw Object.assign(new Error(`Cannot find module '${moduleName}'`), { code: "MODULE_NOT_FOUND" });
}

function findIn(name, object) {
  return name.split(".").reduce((nested, key) => (nested && typeof nested === "object" ? nested[key] : undefined), object);
}

async function main() {
  if (handlerString.includes("..")) throw new Error(`'${handlerString}' is not a valid handler name`);
  const { moduleRoot, moduleName, handlerName } = parseHandler(handlerString);
  const started = process.hrtime.bigint();
  let handler;
  let result;
  try {
    const mod = await loadModule(taskDir, moduleRoot, moduleName);
    handler = findIn(handlerName, mod) ?? (mod && "default" in mod ? findIn(handlerName, mod.default) : undefined);
    if (typeof handler !== "function") throw new Error(`${handlerString} is undefined or not exported`);
  } catch (err) {
    result = { ok: false, error: `init: ${err && err.message}` };
  }
  const requireMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (!result && eventFile !== "-") {
    const event = JSON.parse(readFileSync(eventFile, "utf8"));
    try {
      result = { ok: true, value: await handler(event, { awsRequestId: "local", functionName: "artifact", getRemainingTimeInMillis: () => 10_000 }) };
    } catch (err) {
      result = { ok: false, error: err && err.message };
    }
  }
  process.stdout.write("\n@@RESULT " + JSON.stringify({ ok: true, ...result, requireMs }) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
