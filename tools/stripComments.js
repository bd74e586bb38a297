// Build step after `tsc -p tsconfig.build.json`: removes comments from dist/**/*.js, keeps them
// in the .d.ts files. Why: Pulumi serializes a handler's function source into its Lambda's
// zip, comments included, so a consumer who installs this package would zip our comments;
// `removeComments` in tsc would also strip the JSDoc from the declarations users read.
// TypeScript's own emitter does it (transpileModule), so the code is otherwise what tsc wrote.
"use strict";
const fs = require("fs");
const path = require("path");
const ts = require("typescript");

function walk(dir, visit) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, visit);
    else if (entry.name.endsWith(".js")) visit(full);
  }
}

const root = path.resolve(process.argv[2] ?? "dist");
walk(root, (file) => {
  const source = fs.readFileSync(file, "utf8");
  // dist is CommonJS already (require/exports, no import/export syntax): a script to TypeScript,
  // emitted as it is, minus comments. ESNext keeps each `import()` as tsc wrote it (CommonJS
  // would turn it into require(), which cannot load an ES module such as fauxqs).
  const { outputText } = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: { allowJs: true, removeComments: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  fs.writeFileSync(file, outputText);
});
