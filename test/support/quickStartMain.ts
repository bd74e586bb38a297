/**
 * The README's quick start in a process of its own (test/support/background.ts starts it at the
 * lowest CPU priority, which its children inherit), its result written as JSON.
 * Usage: node -r ts-node/register/transpile-only quickStartMain.ts <root> <result-file> <pid-file>
 */
import * as fs from "fs";
import * as os from "os";
import { runQuickStart, setSessionNice } from "./quickStart";

const [root, resultFile, pidFile] = process.argv.slice(2);

function write(result: unknown): void {
  fs.writeFileSync(`${resultFile}.tmp`, JSON.stringify(result));
  fs.renameSync(`${resultFile}.tmp`, resultFile);
}

// The environment is the newcomer's already (background.ts made it with newcomerEnv).
// Its shell leads a session of its own: that session's scheduling group gets this process's priority.
const onStart = (pid: number) => {
  setSessionNice(pid, os.getPriority());
  fs.writeFileSync(pidFile, String(pid));
};
runQuickStart(root, process.env, { onStart }).then(write, (err: unknown) =>
  write({ clone: "", code: null, stdout: "", stderr: `the quick start did not run: ${err instanceof Error ? err.stack : String(err)}` }),
);
