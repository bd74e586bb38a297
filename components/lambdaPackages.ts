/**
 * What the hub's Lambdas load, and from where.
 *
 * The AWS Lambda Node.js runtime resolves a bare `require` from `/var/task` (the function's
 * zip), then along NODE_PATH: `/opt/nodejs/node22/node_modules`, `/opt/nodejs/node_modules`
 * (layers), `/var/runtime/node_modules` (the runtime's own SDK). That SDK has only `@aws-sdk/*`
 * at its top level (its `@smithy/*` are nested under `@aws-sdk/node_modules`, out of reach of
 * our code), its version is older than ours and changes without notice, and AWS advises
 * bringing your own. So nothing is taken from it:
 *
 * - **The SDK layer**: one Lambda layer per hub holds every `@aws-sdk/*` and `@smithy/*`
 *   package the handlers require ({@link LAYER_PACKAGES}) and their dependencies, exactly
 *   as resolved from this package's own folder (the versions the tests ran), without their
 *   ES-module and type-declaration copies, which `require` never reads. It lands in
 *   `/opt/nodejs/node_modules`, ahead of the runtime's SDK on NODE_PATH.
 * - **Each function's zip**: CallbackFunction zips every package of the program's
 *   `dependencies` (and theirs); we exclude every one the program (and, when installed from
 *   npm, this package) declares, except the packages that handler requires beyond the SDK
 *   (handlers/manifest.ts `packages`, e.g. jsonwebtoken for the authorizer).
 *
 * Supported package managers: npm, and Yarn with `nodeLinker: node-modules`. pnpm's
 * symlinked store and Yarn Plug'n'Play have no `node_modules` tree as Pulumi's packaging
 * reads it: {@link assertSupportedLayout} stops `pulumi up` with the way out instead.
 */
import * as fs from "fs";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { HANDLER_NAMES, HANDLERS, LAYER_PACKAGES, type HandlerName } from "../handlers/manifest";

export { LAYER_PACKAGES };

export const PACKAGE_NAME = "notification-hub";

/** npm packages each handler requires at run time beyond the SDK layer's (from handlers/manifest.ts). */
export const HANDLER_PACKAGES = Object.fromEntries(HANDLER_NAMES.map((name) => [name, [...HANDLERS[name].packages]])) as Record<HandlerName, string[]>;

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
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

/** Where Node finds package `name` from `fromDir`: the folder that holds `node_modules/name`, and the package's folder. */
function findPackage(name: string, fromDir: string): { holder: string; dir: string; json: PackageJson } | undefined {
  // Walk node_modules folders up from fromDir, as Node resolves, without tripping over "exports".
  let dir = fromDir;
  for (;;) {
    if (path.basename(dir) !== "node_modules") {
      const candidate = path.join(dir, "node_modules", name, "package.json");
      const json = readJson(candidate);
      if (json) return { holder: dir, dir: path.dirname(candidate), json };
    }
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
    const found = findPackage(name, from);
    for (const dep of Object.keys(found?.json.dependencies ?? {})) visit(dep, found?.dir ?? from);
  };
  for (const root of roots) visit(root, fromDir);
  return seen;
}

/** Thrown at `pulumi up` when the packages cannot be laid out as the Lambda runtime reads them. */
export class UnsupportedLayoutError extends Error {
  override readonly name = "UnsupportedLayoutError";
}

const PNPM_STORE = `${path.sep}node_modules${path.sep}.pnpm${path.sep}`;

/**
 * Stops a program whose packages are installed in a layout Pulumi's Lambda packaging cannot
 * read (pulumi/pulumi#10009): pnpm's symlinked store, Yarn Plug'n'Play. `packageDir` is a
 * package folder the Lambdas need, as Node found it.
 */
export function assertSupportedLayout(packageDir: string | undefined, what: string, fromDir: string): asserts packageDir is string {
  if (packageDir === undefined) throw notFound(what, fromDir);
  const real = fs.realpathSync(packageDir);
  if (real.includes(PNPM_STORE)) {
    throw new UnsupportedLayoutError(
      `NotificationHub: ${what} is installed in pnpm's symlinked store (${real}), which Pulumi's Lambda packaging cannot read (pulumi/pulumi#10009). Install with npm, or set "node-linker=hoisted" in .npmrc and run pnpm install again.`,
    );
  }
}

function notFound(what: string, fromDir: string): UnsupportedLayoutError {
  const pnp = (process.versions as Record<string, string | undefined>).pnp !== undefined || hasAbove(fromDir, ".pnp.cjs");
  return new UnsupportedLayoutError(
    pnp
      ? `NotificationHub: ${what} is not in a node_modules folder: Yarn Plug'n'Play installs none, and Pulumi packages Lambdas from node_modules. Set "nodeLinker: node-modules" in .yarnrc.yml and run yarn install again, or install with npm.`
      : `NotificationHub: ${what} is not installed (looked in every node_modules folder above ${fromDir}). Run npm install.`,
  );
}

function hasAbove(fromDir: string, file: string): boolean {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, file))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}

export function codePathOptionsFor(handler: HandlerName): pulumi.runtime.CodePathOptions {
  const programDir = programPackageDir() ?? path.resolve(".");
  const program = readJson(path.join(programDir, "package.json")) ?? {};
  const declared = new Set(Object.keys(program.dependencies ?? {}));
  // Installed from npm, this package is one of the program's dependencies, and its own
  // dependencies would be zipped too: they are candidates for exclusion as well.
  const installed = program.name === PACKAGE_NAME ? undefined : findPackage(PACKAGE_NAME, programDir);
  if (installed) assertSupportedLayout(installed.dir, PACKAGE_NAME, programDir);
  for (const dep of Object.keys(installed?.json.dependencies ?? {})) declared.add(dep);

  const from = installed?.dir ?? programDir;
  for (const name of HANDLER_PACKAGES[handler]) assertSupportedLayout(findPackage(name, from)?.dir, name, from);
  const needed = dependencyClosure(HANDLER_PACKAGES[handler], from);
  const extraExcludePackages = [...declared].filter((name) => !needed.has(name) && name !== PACKAGE_NAME).sort();
  return { extraExcludePackages };
}

/** What `require` never reads: ES-module and type-declaration copies, source maps, docs. */
const SKIPPED_FOLDERS = new Set(["dist-es", "dist-types", "node_modules"]);
const SKIPPED_FILE = /(\.d\.[cm]?ts|\.map|\.md|\.ts|\.mts|\.cts)$/;

function packageFiles(dir: string, visit: (relative: string) => void, relative = ""): void {
  for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
    const child = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name)) packageFiles(dir, visit, child);
    } else if (entry.isFile() && !SKIPPED_FILE.test(entry.name)) {
      visit(child);
    }
  }
}

/** One package in the layer: its name, version, where it is read from and where it goes. */
export interface LayerPackage {
  name: string;
  version: string;
  /** The package's folder on this machine. */
  source: string;
  /** Its folder inside the layer's zip (`nodejs/node_modules/...`). */
  target: string;
}

/** The layer's contents: zip path → file on this machine, and the packages they come from. */
export interface LayerContents {
  files: Record<string, string>;
  packages: LayerPackage[];
}

const LAYER_ROOT = "nodejs/node_modules";

/**
 * The SDK layer's files: {@link LAYER_PACKAGES} and everything they require, resolved as Node
 * resolves them from `fromDir` (default: this package's own folder, so a consumer's program
 * ships the versions this package was installed with). A package Node finds nested inside
 * another (a second version) stays nested inside it in the layer, so every `require` in the
 * layer resolves to the same version it does here.
 *
 * @example
 * const { files } = sdkLayerContents();
 * new aws.lambda.LayerVersion("sdk", {
 *   layerName: "my-sdk",
 *   code: new pulumi.asset.AssetArchive(Object.fromEntries(Object.entries(files).map(([to, from]) => [to, new pulumi.asset.FileAsset(from)]))),
 * });
 */
export function sdkLayerContents(fromDir: string = __dirname, roots: readonly string[] = LAYER_PACKAGES): LayerContents {
  /** Real package folder → its folder in the layer. */
  const placed = new Map<string, string>();
  const byTarget = new Map<string, string>();
  const packages: LayerPackage[] = [];
  const files: Record<string, string> = {};

  const place = (name: string, from: string, optional: boolean): void => {
    const found = findPackage(name, from);
    if (!found) {
      if (optional) return;
      throw notFound(name, from);
    }
    assertSupportedLayout(found.dir, name, from);
    const source = fs.realpathSync(found.dir);
    if (placed.has(source)) return;
    // Nested in a package already in the layer: nested there too. Else at the layer's top.
    const holder = placed.get(safeRealpath(found.holder));
    const target = holder ? `${holder}/node_modules/${name}` : `${LAYER_ROOT}/${name}`;
    const other = byTarget.get(target);
    if (other && other !== source) {
      throw new UnsupportedLayoutError(`NotificationHub: two versions of ${name} (${other} and ${source}) would share ${target} in the SDK layer. Run npm dedupe, or install notification-hub's AWS SDK versions at the top of node_modules.`);
    }
    placed.set(source, target);
    byTarget.set(target, source);
    packages.push({ name, version: found.json.version ?? "", source, target });
    packageFiles(source, (relative) => void (files[`${target}/${relative}`] = path.join(source, relative)));
    for (const dep of Object.keys(found.json.dependencies ?? {})) place(dep, source, false);
    for (const dep of Object.keys(found.json.optionalDependencies ?? {})) place(dep, source, true);
  };
  for (const root of roots) place(root, fromDir, false);
  return { files, packages: packages.sort((a, b) => a.target.localeCompare(b.target)) };
}

function safeRealpath(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return dir;
  }
}

/** Everything the hub's Lambdas are packaged from: the SDK layer's files and each function's zip options. */
export interface LambdaPackaging {
  layer: LayerContents;
  codePaths: Record<HandlerName, pulumi.runtime.CodePathOptions>;
}

/**
 * Reads the packages once, when the component starts and before it declares anything, so an
 * install Pulumi cannot package (pnpm's store, Yarn Plug'n'Play, a missing package) stops the
 * program before any resource is created, rather than part way through or at run time.
 */
export function lambdaPackaging(): LambdaPackaging {
  return {
    layer: sdkLayerContents(),
    codePaths: Object.fromEntries(HANDLER_NAMES.map((handler) => [handler, codePathOptionsFor(handler)])) as Record<HandlerName, pulumi.runtime.CodePathOptions>,
  };
}

