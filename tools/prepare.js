// npm's `prepare` script: builds dist/, which the package's exports and its bin run from.
//
// `npx notification-hub` in a clone installs the clone itself into npx's cache (a link to this
// folder, ~/.npm/_npx/<hash>), which runs this script, with its output hidden. A full build there
// took ~20 s of silence on the first call, though `npm install` had just built dist/. So under
// npx (npm_command "exec") a current dist/ is kept; a missing or older one is built, said on the
// terminal (npm hides a dependency script's output) and again by the CLI once it runs.
"use strict";
const childProcess = require("child_process");
const fs = require("fs");
const path = require("path");
const { distIsStale } = require("./distState");

const root = path.resolve(__dirname, "..");
/** Left by a build made for npx; the CLI says it happened, then removes it. */
const NPX_BUILD_MARK = path.join(root, "dist", ".built-for-npx");

/** A line on the user's terminal even when npm captures our output; on standard error too. */
function tell(line) {
  process.stderr.write(line + "\n");
  try {
    const tty = fs.openSync("/dev/tty", "w");
    fs.writeSync(tty, line + "\n");
    fs.closeSync(tty);
  } catch {
    // No terminal (CI, a test): the CLI says it after the build.
  }
}

const underNpx = process.env.npm_command === "exec";
if (underNpx && !distIsStale(root)) process.exit(0);
if (underNpx) tell("notification-hub: npx is installing this clone to run its CLI; building dist/ first (tsc, about 20 s, once; later calls start at once)");
const npm = process.env.npm_execpath;
const build = npm ? childProcess.spawnSync(process.execPath, [npm, "run", "-s", "build"], { cwd: root, stdio: "inherit" }) : childProcess.spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: "inherit", shell: process.platform === "win32" });
if (build.status !== 0) process.exit(build.status ?? 1);
if (underNpx) fs.writeFileSync(NPX_BUILD_MARK, new Date().toISOString() + "\n");
