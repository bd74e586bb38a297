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
  /** `${type}::${name}` → the former names (or URNs) the resource declares as `aliases`. */
  aliases: Record<string, string[]>;
  /** The project's own modules (outside node_modules) the run loaded. */
  loaded: string[];
  ofType(type: string): RecordedResource[];
  named(name: string): RecordedResource;
}

const ROOT = path.resolve(__dirname, "../..");

interface ProjectFile {
  name: string;
  main?: string;
  config?: Record<string, { type?: string; default?: unknown; secret?: boolean } | string | number | boolean>;
}

export function readProject(projectDir = ROOT): ProjectFile {
  return yaml.load(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as ProjectFile;
}

/**
 * Stack config as the CLI builds it from project config: Pulumi.yaml's declared keys (in the
 * project's namespace unless namespaced) with their defaults, then the stack file. As the CLI
 * does, refuses a stack that leaves a declared key without a default or a value ("Stack 'x' is
 * missing configuration values"), and a value of the wrong declared type.
 */
export function stackConfig(stack: string, projectDir = ROOT, extra: Record<string, string> = {}): Record<string, string> {
  const project = readProject(projectDir);
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  const stackValues = fs.existsSync(stackFile) ? ((yaml.load(fs.readFileSync(stackFile, "utf8")) as { config?: Record<string, unknown> }).config ?? {}) : {};
  const config: Record<string, string> = {};
  const missing: string[] = [];
  const wrongType: string[] = [];
  const given = { ...Object.fromEntries(Object.entries(stackValues).map(([k, v]) => [k, String(v)])), ...extra };
  for (const [key, raw] of Object.entries(project.config ?? {})) {
    const fullKey = key.includes(":") ? key : `${project.name}:${key}`;
    // A bare value is a default of its own type (the short form Pulumi.yaml allows).
    const spec = raw !== null && typeof raw === "object" ? raw : { default: raw };
    const value = fullKey in given ? given[fullKey] : "default" in spec ? String(spec.default) : undefined;
    if (value === undefined) {
      missing.push(fullKey);
      continue;
    }
    if ((spec.type === "integer" && !/^-?\d+$/.test(value)) || (spec.type === "boolean" && !/^(true|false)$/.test(value))) wrongType.push(`${fullKey} (${spec.type}): ${value}`);
    config[fullKey] = value;
  }
  if (missing.length) throw new Error(`Stack '${stack}' is missing configuration values: ${missing.join(", ")}`);
  if (wrongType.length) throw new Error(`Stack '${stack}' has configuration values of the wrong type: ${wrongType.join("; ")}`);
  return { ...config, ...given };
}

/**
 * The entry point the Node.js language host hands to `cmd/run`: Pulumi.yaml's `main` when it
 * names a file, "." when it has none (then `cmd/run` looks at package.json exports and main).
 */
export function hostEntryFor(project: ProjectFile): string {
  return project.main ?? ".";
}

/** The "custom" stack of the component tests: every optional part on, client messages off. */
export const CUSTOM_CONFIG: Record<string, string> = {
  "notification-hub:allowClientMessages": "false",
  "notification-hub:alarmEmail": "oncall@example.com",
  "notification-hub:domainName": "ws.example.com",
  "notification-hub:domainCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
  "notification-hub:domainHostedZoneId": "Z123",
  "notification-hub:apiGatewayLogging": "existing",
  "notification-hub:maxRoomsPerConnection": "20",
};

export interface RunOptions {
  /** Run through @pulumi/pulumi's cmd/run with this entry point instead of requiring `program`. */
  hostEntry?: string;
  env?: Record<string, string>;
}

export function runProgram(program: string, stack: string, config: Record<string, string>, cwd = ROOT, options: RunOptions = {}): Promise<ProgramRun> {
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
        env: {
          ...process.env,
          TS_NODE_PROJECT: path.join(cwd, "tsconfig.json"),
          PULUMI_NODEJS_PROJECT: "",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          // The language host sets PULUMI_NODEJS_TYPESCRIPT for `runtime.options.typescript: true`; cmd/run then
          // registers ts-node with its own options (transpile-only here, as `tsc --noEmit` checks types in npm test).
          ...(options.hostEntry !== undefined ? { PULUMI_HOST_ENTRY: options.hostEntry, PULUMI_NODEJS_TYPESCRIPT: "true", PULUMI_NODEJS_TRANSPILE_ONLY: "true" } : {}),
          ...options.env,
        },
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, _stdout, stderr) => {
        if (error) {
          fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
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
