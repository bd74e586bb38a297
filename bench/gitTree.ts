/** An earlier commit of this checkout as a runnable tree, for benchmarks that compare against it. */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

/**
 * `commit`'s tree in a temp folder with this checkout's node_modules, or undefined (said through
 * `say`) when git cannot give it. node_modules is a copy (hard links, no bytes copied), not a
 * symlink: Pulumi names a package's place in a zip by its real path relative to the program, and a
 * symlinked node_modules would put every package outside the zip (../../…/node_modules/x).
 */
export function treeAt(commit: string, say: (line: string) => void = (line) => console.error(line)): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${commit}-`));
  try {
    childProcess.execSync(`git archive ${commit} | tar -x -C ${JSON.stringify(dir)}`, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    childProcess.execFileSync("cp", ["-al", path.join(ROOT, "node_modules"), path.join(dir, "node_modules")]);
    return dir;
  } catch (err) {
    say(`commit ${commit} not available (${(err as Error).message.split("\n")[0]}): not compared`);
    fs.rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}
