/**
 * Turns a CallbackFunction's archive (as recorded under mocks) into a folder laid out like
 * the Lambda's zip, and invokes it in a fresh Node process. The AWS SDK is not in our zips
 * (Lambda's Node.js runtime provides it), so the fresh process gets it through NODE_PATH,
 * as /var/runtime/node_modules provides it on AWS, and nothing else.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { dependencyClosure } from "../../components/lambdaPackages";
import type { RecordedResource } from "./runProgram";

export const RUNTIME_SDK_PACKAGES = [
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/client-sqs",
  "@aws-sdk/client-apigatewaymanagementapi",
  "@aws-sdk/client-ssm",
];

let runtimeDir: string | undefined;

/** A node_modules with only the AWS SDK and what it needs: what Lambda's runtime provides. */
export function lambdaRuntimeModules(projectDir: string): string {
  if (runtimeDir) return runtimeDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lambda-runtime-"));
  // Shared by every artifact run of this test process; only symlinks, gone when the process ends.
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const modules = path.join(dir, "node_modules");
  for (const name of dependencyClosure(RUNTIME_SDK_PACKAGES, projectDir)) {
    const source = path.join(projectDir, "node_modules", name);
    if (!fs.existsSync(source)) continue;
    const target = path.join(modules, name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(source, target, "dir");
  }
  runtimeDir = modules;
  return modules;
}

export interface Artifact {
  dir: string;
  files: string[];
  packages: string[];
  bytes: number;
  /** Deflate-compressed size plus zip headers: what the uploaded zip weighs. */
  zipBytes: number;
}

function walk(dir: string, visit: (file: string) => void): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, visit);
    else if (entry.isFile()) visit(full);
  }
}

/** A zip's size: each file deflated plus its local and central headers, plus the end record. */
export const ZIP_END_BYTES = 22;
export function zipEntryBytes(relativePath: string, content: Buffer | string): number {
  return zlib.deflateRawSync(content).length + 30 + 46 + 2 * Buffer.byteLength(relativePath);
}

export function writeArtifact(fn: RecordedResource): Artifact {
  if (!fn.code) throw new Error(`${fn.name} has no code archive`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `artifact-${fn.name}-`));
  fs.writeFileSync(path.join(dir, "__index.js"), fn.code.indexJs);
  const packages: string[] = [];
  for (const [name, source] of Object.entries(fn.code.files)) {
    if (source === "<inline>") continue;
    fs.cpSync(source, path.join(dir, name), { recursive: true, dereference: true });
    packages.push(name.replace(/^node_modules\//, ""));
  }
  const files: string[] = [];
  let bytes = 0;
  let zipBytes = ZIP_END_BYTES;
  walk(dir, (file) => {
    const content = fs.readFileSync(file);
    const relative = path.relative(dir, file);
    files.push(relative);
    bytes += content.length;
    zipBytes += zipEntryBytes(relative, content);
  });
  return { dir, files, packages: packages.sort(), bytes, zipBytes };
}

export interface Invocation {
  ok: boolean;
  value?: unknown;
  error?: string;
  requireMs: number;
  logs: string;
}

export function invokeArtifact(artifact: Artifact, event: unknown, env: Record<string, string>, projectDir: string): Promise<Invocation> {
  const eventFile = path.join(artifact.dir, "event.json");
  fs.writeFileSync(eventFile, JSON.stringify(event));
  const runner = path.join(__dirname, "invokeArtifact.js");
  return new Promise((resolve, reject) => {
    childProcess.execFile(
      process.execPath,
      [runner, artifact.dir, eventFile],
      {
        cwd: artifact.dir,
        env: {
          PATH: process.env.PATH ?? "",
          NODE_PATH: lambdaRuntimeModules(projectDir),
          AWS_REGION: "eu-west-1",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...env,
        },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const marker = stdout.lastIndexOf("@@RESULT ");
        if (marker < 0) {
          reject(new Error(`artifact did not run: ${error?.message ?? ""}\n${stderr}\n${stdout}`));
          return;
        }
        const result = JSON.parse(stdout.slice(marker + 9).trim()) as Omit<Invocation, "logs">;
        resolve({ ...result, logs: stdout.slice(0, marker) + stderr });
      },
    );
  });
}
