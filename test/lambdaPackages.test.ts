/**
 * What the Lambdas are packaged with: the SDK layer's contents as Node resolves them, the
 * package-manager layouts Pulumi's packaging cannot read, and the manifest's package lists
 * against what the handlers' compiled code really requires.
 */
import * as fs from "fs";
import { builtinModules } from "module";
import * as os from "os";
import * as path from "path";
import { afterEach, describe, expect, it } from "vitest";
import { LAYER_PACKAGES, sdkLayerContents, UnsupportedLayoutError } from "../components/lambdaPackages";
import { HANDLER_NAMES, HANDLERS } from "../handlers/manifest";

const ROOT = process.cwd();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A project folder with packages: `path → package.json fields`. */
function project(packages: Record<string, { name: string; version: string; dependencies?: Record<string, string> }>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layout-"));
  dirs.push(dir);
  for (const [where, json] of Object.entries(packages)) {
    fs.mkdirSync(path.join(dir, where), { recursive: true });
    fs.writeFileSync(path.join(dir, where, "package.json"), JSON.stringify({ main: "index.js", ...json }));
    fs.writeFileSync(path.join(dir, where, "index.js"), `module.exports = ${JSON.stringify(json.version)};\n`);
    fs.mkdirSync(path.join(dir, where, "dist-types"), { recursive: true });
    fs.writeFileSync(path.join(dir, where, "dist-types", "index.d.ts"), "export {};\n");
  }
  return dir;
}

describe("the SDK layer", () => {
  it("keeps a second version nested inside the package that needs it, so every require resolves as it does here", () => {
    const dir = project({
      "node_modules/@aws-sdk/client-x": { name: "@aws-sdk/client-x", version: "3.2.0", dependencies: { "@smithy/core": "^2", tslib: "^2" } },
      "node_modules/@aws-sdk/client-x/node_modules/@smithy/core": { name: "@smithy/core", version: "2.0.0", dependencies: { tslib: "^2" } },
      "node_modules/@smithy/core": { name: "@smithy/core", version: "3.0.0" },
      "node_modules/tslib": { name: "tslib", version: "2.8.0" },
    });
    const { files, packages } = sdkLayerContents(dir, ["@aws-sdk/client-x", "@smithy/core"]);
    expect(packages.map((p) => `${p.target}@${p.version}`)).toEqual([
      "nodejs/node_modules/@aws-sdk/client-x@3.2.0",
      "nodejs/node_modules/@aws-sdk/client-x/node_modules/@smithy/core@2.0.0",
      "nodejs/node_modules/@smithy/core@3.0.0",
      "nodejs/node_modules/tslib@2.8.0",
    ]);
    // Type declarations never reach the layer; each package's code and package.json do.
    expect(Object.keys(files).sort()).toEqual(packages.flatMap((p) => [`${p.target}/index.js`, `${p.target}/package.json`]).sort());
  });

  it("stops the program, naming the way out, when the packages sit in pnpm's symlinked store", () => {
    const dir = project({ "node_modules/.pnpm/@aws-sdk+client-x@3.2.0/node_modules/@aws-sdk/client-x": { name: "@aws-sdk/client-x", version: "3.2.0" } });
    fs.mkdirSync(path.join(dir, "node_modules/@aws-sdk"), { recursive: true });
    fs.symlinkSync(path.join(dir, "node_modules/.pnpm/@aws-sdk+client-x@3.2.0/node_modules/@aws-sdk/client-x"), path.join(dir, "node_modules/@aws-sdk/client-x"), "dir");
    expect(() => sdkLayerContents(dir, ["@aws-sdk/client-x"])).toThrow(UnsupportedLayoutError);
    expect(() => sdkLayerContents(dir, ["@aws-sdk/client-x"])).toThrow(/pnpm's symlinked store .*node-linker=hoisted/);
  });

  it("stops the program, naming the way out, under Yarn Plug'n'Play (no node_modules at all)", () => {
    const dir = project({});
    fs.writeFileSync(path.join(dir, ".pnp.cjs"), "");
    expect(() => sdkLayerContents(dir, ["@aws-sdk/client-x"])).toThrow(/Yarn Plug'n'Play .*nodeLinker: node-modules/);
  });

  it("refuses two versions of one package that would need the same place in the layer, naming both", () => {
    // A consumer: the hub's own tslib nested in notification-hub (not a layer package), the
    // app's older one at its top; both would land in nodejs/node_modules/tslib.
    const dir = project({
      "node_modules/notification-hub": { name: "notification-hub", version: "1.0.0" },
      "node_modules/notification-hub/node_modules/@aws-sdk/client-x": { name: "@aws-sdk/client-x", version: "3.2.0", dependencies: { tslib: "^2" } },
      "node_modules/notification-hub/node_modules/tslib": { name: "tslib", version: "2.8.0" },
      "node_modules/@aws-sdk/client-z": { name: "@aws-sdk/client-z", version: "3.2.0", dependencies: { tslib: "^1" } },
      "node_modules/tslib": { name: "tslib", version: "1.14.0" },
    });
    const hub = path.join(dir, "node_modules/notification-hub");
    expect(sdkLayerContents(hub, ["@aws-sdk/client-x"]).packages.map((p) => `${p.name}@${p.version}`)).toEqual(["@aws-sdk/client-x@3.2.0", "tslib@2.8.0"]);
    expect(() => sdkLayerContents(hub, ["@aws-sdk/client-x", "@aws-sdk/client-z"])).toThrow(/two versions of tslib .*nodejs\/node_modules\/tslib/);
  });
});

describe("the manifest's package lists", () => {
  /** Every bare `require("x")` of the compiled Lambda code (core/ and handlers/), by package name. */
  function requiredPackages(): Set<string> {
    const found = new Set<string>();
    for (const folder of ["core", "handlers"]) {
      for (const file of fs.readdirSync(path.join(ROOT, "dist", folder)).filter((f) => f.endsWith(".js"))) {
        const text = fs.readFileSync(path.join(ROOT, "dist", folder, file), "utf8");
        for (const [, spec] of text.matchAll(/require\("([^"]+)"\)/g)) {
          if (spec.startsWith(".") || spec.startsWith("node:") || builtinModules.includes(spec)) continue;
          found.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
        }
      }
    }
    return found;
  }

  it("name every package the handlers' compiled code requires, and nothing it does not", () => {
    const required = requiredPackages();
    const handlerPackages = new Set<string>(HANDLER_NAMES.flatMap((name) => [...HANDLERS[name].packages]));
    expect([...required].filter((name) => !LAYER_PACKAGES.includes(name) && !handlerPackages.has(name))).toEqual([]);
    expect(LAYER_PACKAGES.filter((name) => !required.has(name))).toEqual([]);
    expect([...handlerPackages].filter((name) => !required.has(name))).toEqual([]);
  });

  it("leave the AWS SDK to the layer: no handler's own zip lists an @aws-sdk or @smithy package", () => {
    for (const name of HANDLER_NAMES) expect(HANDLERS[name].packages.filter((p) => /^@(aws-sdk|smithy)\//.test(p)), name).toEqual([]);
  });
});
