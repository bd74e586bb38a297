/**
 * Where the CLI and app scripts find a running local hub: each hub writes its endpoints and
 * dev secrets to a file of its own (`.notification-hub/hub-<pid>-<port>.json`, 0600 in a 0700
 * folder) and removes only that file when it stops. A second `npm run dev` in the same folder
 * therefore never overwrites or deletes the first one's file, and readers can say which hubs
 * are running, which files are left over from a killed one, and which to pick.
 *
 * The folder is the project's, not the shell's: `dev` writes to the `.notification-hub/` of
 * the nearest folder up from where it runs that has one, a package.json or a .git, and readers
 * look in every `.notification-hub/` from where they run up to the filesystem's root, so a
 * command run in any subfolder of the project finds the hub. `--hub PORT` (or a URL) also
 * reaches a hub started elsewhere: its HTTP server names its state file (loopback only, no
 * secrets; the file's own 0600 still decides who may read them).
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import type { NotifierOptions } from "../server";
import type { LocalHubInfo } from "./index";
import { writePrivateFile } from "./privateFiles";

/** The folder's name: `notification-hub dev` writes there, in the project's root (see projectStateDir). */
export const DEFAULT_STATE_DIR = ".notification-hub";

/** `from` and each folder above it, nearest first. */
function upFrom(from: string): string[] {
  const folders: string[] = [];
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    folders.push(dir);
    if (path.dirname(dir) === dir) return folders;
  }
}

const isDir = (dir: string) => fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;

/**
 * Where `notification-hub dev` keeps its state file when run in `from`: the
 * `.notification-hub/` of the nearest folder up that has one, a package.json or a .git
 * (the project's root), else of `from` itself.
 */
export function projectStateDir(from: string = process.cwd()): string {
  const root = upFrom(from).find((dir) => isDir(path.join(dir, DEFAULT_STATE_DIR)) || fs.existsSync(path.join(dir, "package.json")) || fs.existsSync(path.join(dir, ".git")));
  return path.join(root ?? path.resolve(from), DEFAULT_STATE_DIR);
}

/** Every `.notification-hub/` from `from` up to the root, nearest first: where readers look. */
export function stateDirsUpFrom(from: string = process.cwd()): string[] {
  return upFrom(from)
    .map((dir) => path.join(dir, DEFAULT_STATE_DIR))
    .filter(isDir);
}

export interface HubState extends LocalHubInfo {
  pid: number;
  startedAt: string;
  /** The file this state was read from. */
  file: string;
}

export interface RunningHub extends HubState {
  /** createNotifier's options for this hub, endpoints included. */
  notifierOptions: NotifierOptions;
}

/** Why no hub (or no single hub) could be picked; the message says what to pass instead. */
export class LocalHubNotFound extends Error {
  override name = "LocalHubNotFound";
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

function readState(file: string): HubState | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(file, "utf8")) as HubState;
    if (typeof state.pid !== "number" || typeof state.httpUrl !== "string") return undefined;
    return { ...state, file };
  } catch {
    return undefined; // half-written, or not ours
  }
}

/**
 * Writes this hub's state to `file`, or to a new file of its own in `dir`; returns the file
 * and the function that removes it (and only it). An explicit file that a live hub owns is refused.
 */
export function writeStateFile(where: { file?: string; dir?: string }, info: LocalHubInfo): { file: string; remove(): Promise<void> } {
  const port = new URL(info.httpUrl).port;
  const file = path.resolve(where.file ?? path.join(where.dir ?? projectStateDir(), `hub-${process.pid}-${port}.json`));
  const owner = fs.existsSync(file) ? readState(file) : undefined;
  if (owner && owner.pid !== process.pid && isAlive(owner.pid)) {
    throw new LocalHubNotFound(`${file} belongs to the hub at ${owner.httpUrl} (pid ${owner.pid}); pass another --state-file (or none: each hub gets its own)`);
  }
  const state: Omit<HubState, "file"> = { ...info, pid: process.pid, startedAt: new Date().toISOString() };
  writePrivateFile(file, JSON.stringify(state, null, 2));
  return {
    file,
    remove: async () => {
      // Only while it is still ours: a later hub given the same --state-file may own it now.
      if (readState(file)?.pid === process.pid) fs.rmSync(file, { force: true });
    },
  };
}

/** Hubs whose files are in `dir`: those whose process runs, and files left by stopped ones. */
export function listHubs(dir: string = projectStateDir()): { running: HubState[]; stale: HubState[] } {
  const running: HubState[] = [];
  const stale: HubState[] = [];
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith(".json")) : [];
  for (const name of names.sort()) {
    const state = readState(path.join(dir, name));
    if (state) (isAlive(state.pid) ? running : stale).push(state);
  }
  return { running, stale };
}

const START = "start one with `npx notification-hub dev` (or `npm run dev`)";

function describe(state: HubState): string {
  return `${state.httpUrl} (pid ${state.pid}, started ${state.startedAt})`;
}

/** Whether `hub` (a port, a URL, or a pid) names this state. */
function matches(state: HubState, hub: string): boolean {
  const url = new URL(state.httpUrl);
  return hub === url.port || hub === String(state.pid) || hub.replace(/\/?$/, "/") === state.httpUrl;
}

export function notifierOptionsFor(state: LocalHubInfo): NotifierOptions {
  return {
    queueUrl: state.queueUrl,
    authTableName: state.authTableName,
    connectionsTableName: state.connectionsTableName,
    streamsTableName: state.streamsTableName,
    // Presence on: presence/occupancy read it, and revokeToken leaves the revoked connections' rooms with reason `revoked`.
    ...(state.presenceTableName ? { presenceTableName: state.presenceTableName } : {}),
    managementEndpoint: state.managementEndpoint,
    jwtSecret: state.jwtSecret,
    passcode: state.passcode,
    region: state.region,
    endpoints: { sqs: state.sqsEndpoint, dynamodb: state.dynamodbEndpoint },
    // The hub's @connections API verifies SigV4 with its dev credentials (revoke closes sockets).
    credentials: state.credentials,
  };
}

/**
 * The local hub started in this project (`npm run dev`), for scripts and the CLI: the one
 * running in the nearest `.notification-hub/` from the working folder up. With several
 * running, `hub` (or NOTIFICATION_HUB_LOCAL) picks one by port, URL or pid; `stateFile` names
 * one file directly; `dir` names the one folder to look in.
 *
 * ```js
 * const hub = createNotifier(findLocalHub().notifierOptions);
 * ```
 */
export function findLocalHub(options: { dir?: string; hub?: string; stateFile?: string } = {}): RunningHub {
  let state: HubState | undefined;
  if (options.stateFile) {
    state = fs.existsSync(options.stateFile) ? readState(options.stateFile) : undefined;
    if (!state) throw new LocalHubNotFound(`no local hub state in ${options.stateFile}; ${START}, or pass the --state-file it printed`);
    if (!isAlive(state.pid)) throw new LocalHubNotFound(`no hub running at ${state.httpUrl}: ${options.stateFile} is left from pid ${state.pid}, which has stopped; ${START}`);
  } else {
    const hub = options.hub ?? process.env.NOTIFICATION_HUB_LOCAL;
    const dirs = options.dir ? [options.dir] : stateDirsUpFrom();
    const looked = dirs.map((dir) => ({ dir, ...listHubs(dir) }));
    // The nearest folder with a hub running (one that matches `hub`, if given) decides.
    const found = looked.map((l) => ({ ...l, candidates: hub ? l.running.filter((s) => matches(s, hub)) : l.running })).find((l) => l.candidates.length > 0);
    if (found && found.candidates.length === 1) state = found.candidates[0];
    else if (found) {
      throw new LocalHubNotFound(`${found.candidates.length} local hubs are running here: ${found.candidates.map(describe).join(", ")}; pick one with --hub <port> (or NOTIFICATION_HUB_LOCAL=<port>)`);
    } else {
      const running = looked.flatMap((l) => l.running);
      const stale = looked.flatMap((l) => l.stale);
      const where = dirs.length ? dirs.map((dir) => path.resolve(dir)).join(", ") : `any ${DEFAULT_STATE_DIR}/ from ${process.cwd()} up`;
      const left = stale.length ? ` (${where} only holds files of stopped hubs: ${stale.map(describe).join(", ")})` : "";
      const which = hub ? `no running local hub matches --hub ${hub}; running: ${running.map(describe).join(", ") || "none"}` : `no local hub is running in ${where}${left}`;
      throw new LocalHubNotFound(`${which}; ${START}, or name a deployed stack (--queue-url and friends, or NOTIFICATION_HUB_QUEUE_URL and friends)`);
    }
  }
  return { ...state, notifierOptions: notifierOptionsFor(state) };
}

/** The address `--hub` gave, when it is a port or a URL (a pid is not an address). */
function hubAddress(hub: string): URL | undefined {
  if (/^\d+$/.test(hub)) return Number(hub) > 0 && Number(hub) < 65536 ? new URL(`http://127.0.0.1:${hub}/`) : undefined;
  try {
    const url = new URL(hub);
    return url.protocol === "http:" ? url : undefined;
  } catch {
    return undefined;
  }
}

/** GET a local hub's JSON (loopback, short timeout); undefined when nothing (or no hub) answers. */
function getJson(url: URL, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        try {
          resolve(response.statusCode === 200 ? (JSON.parse(body) as Record<string, unknown>) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", () => resolve(undefined));
  });
}

/** The path under which a local hub's HTTP server names its state file (local/console.ts). */
export const HUB_STATE_PATH = "/console/api/hub";

/**
 * findLocalHub, and when `hub` is a port or URL that no state file here names, the hub that
 * answers at that address: it names its state file, read as any other (same user, 0600).
 */
export async function locateLocalHub(options: { dir?: string; hub?: string; stateFile?: string } = {}): Promise<RunningHub> {
  try {
    return findLocalHub(options);
  } catch (err) {
    const hub = options.hub ?? process.env.NOTIFICATION_HUB_LOCAL;
    const address = !options.stateFile && hub ? hubAddress(hub) : undefined;
    if (!(err instanceof LocalHubNotFound) || !address) throw err;
    const answer = await getJson(new URL(HUB_STATE_PATH, address), 3_000);
    if (!answer) throw new LocalHubNotFound(`no local hub answers at ${address.href}; ${START}`);
    const file = typeof answer.stateFile === "string" ? answer.stateFile : undefined;
    if (!file) throw new LocalHubNotFound(`the hub at ${address.href} keeps no state file (started by startLocalHub without stateFile or stateDir), so its dev secrets are not readable here`);
    return findLocalHub({ stateFile: file });
  }
}
/** Resolves when the hub answers on its HTTP port, else rejects naming the hub and its file. */
export function checkHubAnswers(state: HubState, timeoutMs = 3_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new LocalHubNotFound(`no hub answers at ${state.httpUrl} (${why}; state file ${state.file}, pid ${state.pid}); start one with \`npx notification-hub dev\``));
    const request = http.get(new URL("health", state.httpUrl), { timeout: timeoutMs }, (response) => {
      response.resume();
      if (response.statusCode === 200) resolve();
      else fail(`HTTP ${response.statusCode}`);
    });
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", (err) => fail((err as NodeJS.ErrnoException).code ?? err.message));
  });
}
