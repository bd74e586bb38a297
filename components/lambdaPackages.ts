/**
 * What goes into each Lambda's zip.
 *
 * CallbackFunction zips every package in the program's `dependencies` (and theirs). We
 * turn that around: exclude every dependency the program (and, when installed from npm,
 * this package) declares, except the packages a handler really requires and what they
 * require in turn. The AWS SDK v3 is not shipped: the Node.js Lambda runtimes provide it.
 */
import * as fs from "fs";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { HANDLER_NAMES, HANDLERS, type HandlerName } from "../handlers/manifest";

export const PACKAGE_NAME = "notification-hub";

/** npm packages each handler requires at run time, besides the runtime's AWS SDK (from handlers/manifest.ts). */
export const HANDLER_PACKAGES = Object.fromEntries(HANDLER_NAMES.map((name) => [name, [...HANDLERS[name].packages]])) as Record<HandlerName, string[]>;

interface PackageJson {
  name?: string;
  dependencies?: Record<string, string>;
}

function readJson(file: string): PackageJson | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as PackageJson;
  } catch {
    return undefined;
  }
}

/** The package.json Pulumi itself reads: the first one up from the working directory. */
function programPackageDir(): string | undefined {
  let dir = path.resolve(".");
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function packageJsonOf(name: string, fromDir: string): { dir: string; json: PackageJson } | undefined {
  // Walk node_modules folders up from fromDir, as Node resolves, without tripping over "exports".
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name, "package.json");
    const json = readJson(candidate);
    if (json) return { dir: path.dirname(candidate), json };
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The packages a set of packages needs, transitively (names only). */
export function dependencyClosure(roots: string[], fromDir: string): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string, from: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const found = packageJsonOf(name, from);
    for (const dep of Object.keys(found?.json.dependencies ?? {})) visit(dep, found?.dir ?? from);
  };
  for (const root of roots) visit(root, fromDir);
  return seen;
}

export function codePathOptionsFor(handler: HandlerName): pulumi.runtime.CodePathOptions {
  const programDir = programPackageDir() ?? path.resolve(".");
  const program = readJson(path.join(programDir, "package.json")) ?? {};
  const declared = new Set(Object.keys(program.dependencies ?? {}));
  // Installed from npm, this package is one of the program's dependencies, and its own
  // dependencies would be zipped too: they are candidates for exclusion as well.
  const installed = program.name === PACKAGE_NAME ? undefined : packageJsonOf(PACKAGE_NAME, programDir);
  for (const dep of Object.keys(installed?.json.dependencies ?? {})) declared.add(dep);

  const needed = dependencyClosure(HANDLER_PACKAGES[handler], installed?.dir ?? programDir);
  const extraExcludePackages = [...declared].filter((name) => !needed.has(name) && name !== PACKAGE_NAME).sort();
  return { extraExcludePackages };
}
