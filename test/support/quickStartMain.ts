/**
 * The README's quick start in a process of its own (test/support/background.ts starts it at the
 * lowest CPU priority, which its children inherit), its result written as JSON.
 * Usage: node -r ts-node/register/transpile-only quickStartMain.ts <root> <result-file> <pid-file>
 */
import * as fs from "fs";
import { runQuickStart } from "./quickStart";

const [root, resultFile, pidFile] = process.argv.slice(2);

function write(result: unknown): void {
  fs.writeFileSync(`${resultFile}.tmp`, JSON.stringify(result));
  fs.renameSync(`${resultFile}.tmp`, resultFile);
}

// The environment is the newcomer's already (background.ts made it with newcomerEnv).
runQuickStart(root, process.env, { onStart: (pid) => fs.writeFileSync(pidFile, String(pid)) }).then(write, (err: unknown) =>
  write({ clone: "", code: null, stdout: "", stderr: `the quick start did not run: ${err instanceof Error ? err.stack : String(err)}` }),
);
