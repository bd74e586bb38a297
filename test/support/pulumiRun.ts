/** Runs a Pulumi program under mocks in a child process (see runProgram.ts) and reads back what it registered. */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import type { RecordedResource } from "./runProgram";

export interface ProgramRun {
  outputs: Record<string, unknown>;
  resources: RecordedResource[];
  urns: string[];
  ofType(type: string): RecordedResource[];
  named(name: string): RecordedResource;
}

const ROOT = path.resolve(__dirname, "../..");

/** Stack config as the CLI would build it: Pulumi.yaml defaults, then the stack file. */
export function stackConfig(stack: string, projectDir = ROOT, extra: Record<string, string> = {}): Record<string, string> {
  const config: Record<string, string> = {};
  const project = yaml.load(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as {
    name: string;
    config?: Record<string, { default?: unknown }>;
  };
  for (const [key, spec] of Object.entries(project.config ?? {})) {
    if (spec && typeof spec === "object" && "default" in spec) config[`${project.name}:${key}`] = String(spec.default);
  }
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  if (fs.existsSync(stackFile)) {
    const values = (yaml.load(fs.readFileSync(stackFile, "utf8")) as { config?: Record<string, unknown> }).config ?? {};
    for (const [key, value] of Object.entries(values)) config[key] = String(value);
  }
  return { ...config, ...extra };
}

export function runProgram(program: string, stack: string, config: Record<string, string>, cwd = ROOT): Promise<ProgramRun> {
  const outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-run-")), "run.json");
  // The runner must load @pulumi/pulumi from the program's own node_modules (the instance the
  // program registers resources with), so outside this repo it runs from a copy beside the program.
  let runner = path.join(ROOT, "test/support/runProgram.ts");
  if (path.resolve(cwd) !== ROOT) {
    const copy = path.join(cwd, "run-program.ts");
    fs.copyFileSync(runner, copy);
    runner = copy;
  }
  return new Promise((resolve, reject) => {
    childProcess.execFile(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", runner, program, stack, JSON.stringify(config), outFile],
      {
        cwd,
        env: { ...process.env, TS_NODE_PROJECT: path.join(cwd, "tsconfig.json"), PULUMI_NODEJS_PROJECT: "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, _stdout, stderr) => {
        if (error) {
          reject(new Error(`program ${program} (${stack}) failed: ${error.message}\n${stderr}`));
          return;
        }
        const data = JSON.parse(fs.readFileSync(outFile, "utf8")) as Omit<ProgramRun, "ofType" | "named">;
        fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
        resolve({
          ...data,
          ofType: (type) => data.resources.filter((r) => r.type === type),
          named: (name) => {
            const found = data.resources.find((r) => r.name === name);
            if (!found) throw new Error(`no resource named ${name}`);
            return found;
          },
        });
      },
    );
  });
}
