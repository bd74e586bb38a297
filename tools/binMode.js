// Last build step: makes each package.json "bin" file executable. tsc writes files without
// the execute bit, and `npm run build` (or `npm pack`, whose prepare builds) deletes dist/
// first: without this, the link npx keeps to this clone's bin answers "Permission denied".
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const { bin } = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
for (const file of Object.values(typeof bin === "string" ? { bin } : bin ?? {})) {
  const full = path.join(root, file);
  fs.chmodSync(full, fs.statSync(full).mode | 0o111);
}
