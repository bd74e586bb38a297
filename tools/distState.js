// Whether dist/ is older than what `npm run build` reads. Used by tools/prepare.js (so npx's
// own install of this clone does not rebuild a current dist/) and by the tests' global setup.
"use strict";
const fs = require("fs");
const path = require("path");

/** What `npm run build` reads: tsconfig.build.json's include, the configs, the build's own tools. */
const BUILD_INPUTS = ["components", "handlers", "core", "server", "local", "client", "cli", "tsconfig.json", "tsconfig.build.json", "package.json", "tools"];

function files(entry, visit) {
  if (!fs.existsSync(entry)) return;
  const stat = fs.statSync(entry);
  if (!stat.isDirectory()) return visit(entry, stat.mtimeMs);
  for (const name of fs.readdirSync(entry)) files(path.join(entry, name), visit);
}

/** True when some build input changed after the oldest file of dist/ was written, or dist/ has no bin. */
function distIsStale(root) {
  const dist = path.join(root, "dist");
  if (!fs.existsSync(path.join(dist, "cli/index.js"))) return true;
  let oldestOutput = Infinity;
  files(dist, (file, mtime) => {
    if (file.endsWith(".js")) oldestOutput = Math.min(oldestOutput, mtime);
  });
  let newestInput = 0;
  for (const input of BUILD_INPUTS) files(path.join(root, input), (_, mtime) => (newestInput = Math.max(newestInput, mtime)));
  return newestInput > oldestOutput;
}

module.exports = { BUILD_INPUTS, distIsStale };
