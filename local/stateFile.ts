/**
 * Where the CLI and app scripts find a running local hub: each hub writes its endpoints and
 * dev secrets to a file of its own (`.notification-hub/hub-<pid>-<port>.json`, 0600 in a 0700
 * folder) and removes only that file when it stops. A second `npm run dev` in the same folder
 * therefore never overwrites or deletes the first one's file, and readers can say which hubs
 * are running, which files are left over from a killed one, and which to pick.
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import type { NotifierOptions } from "../server";
import type { LocalHubInfo } from "./index";
import { writePrivateFile } from "./privateFiles";

/** The folder `notification-hub dev` writes to, relative to where it runs. */
export const DEFAULT_STATE_DIR = ".notification-hub";

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
 * Writes this hub's state to `file`, or to a new file of its own in `dir`; returns the
 * function that removes it (and only it). An explicit file that a live hub owns is refused.
 */
export function writeStateFile(where: { file?: string; dir?: string }, info: LocalHubInfo): () => Promise<void> {
  const port = new URL(info.httpUrl).port;
  const file = path.resolve(where.file ?? path.join(where.dir ?? DEFAULT_STATE_DIR, `hub-${process.pid}-${port}.json`));
  const owner = fs.existsSync(file) ? readState(file) : undefined;
  if (owner && owner.pid !== process.pid && isAlive(owner.pid)) {
    throw new LocalHubNotFound(`${file} belongs to the hub at ${owner.httpUrl} (pid ${owner.pid}); pass another --state-file (or none: each hub gets its own)`);
  }
  const state: Omit<HubState, "file"> = { ...info, pid: process.pid, startedAt: new Date().toISOString() };
  writePrivateFile(file, JSON.stringify(state, null, 2));
  return async () => {
    // Only while it is still ours: a later hub given the same --state-file may own it now.
    if (readState(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}

/** Hubs whose files are in `dir`: those whose process runs, and files left by stopped ones. */
export function listHubs(dir: string = DEFAULT_STATE_DIR): { running: HubState[]; stale: HubState[] } {
  const running: HubState[] = [];
  const stale: HubState[] = [];
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith(".json")) : [];
  for (const name of names.sort()) {
    const state = readState(path.join(dir, name));
    if (state) (isAlive(state.pid) ? running : stale).push(state);
  }
  return { running, stale };
}

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
 * The local hub started in this folder (`npm run dev`), for scripts and the CLI. With several
 * running, `hub` (or NOTIFICATION_HUB_LOCAL) picks one by port, URL or pid; `stateFile` names
 * one file directly.
 *
 * ```js
 * const hub = createNotifier(findLocalHub().notifierOptions);
 * ```
 */
export function findLocalHub(options: { dir?: string; hub?: string; stateFile?: string } = {}): RunningHub {
  const start = "start one with `npx notification-hub dev` (or `npm run dev`)";
  let state: HubState | undefined;
  if (options.stateFile) {
    state = fs.existsSync(options.stateFile) ? readState(options.stateFile) : undefined;
    if (!state) throw new LocalHubNotFound(`no local hub state in ${options.stateFile}; ${start}, or pass the --state-file it printed`);
    if (!isAlive(state.pid)) throw new LocalHubNotFound(`no hub running at ${state.httpUrl}: ${options.stateFile} is left from pid ${state.pid}, which has stopped; ${start}`);
  } else {
    const dir = options.dir ?? DEFAULT_STATE_DIR;
    const hub = options.hub ?? process.env.NOTIFICATION_HUB_LOCAL;
    const { running, stale } = listHubs(dir);
    const candidates = hub ? running.filter((s) => matches(s, hub)) : running;
    if (candidates.length === 1) state = candidates[0];
    else if (candidates.length === 0) {
      const left = stale.length ? ` (${dir} only holds files of stopped hubs: ${stale.map(describe).join(", ")})` : "";
      const which = hub ? `no running local hub matches --hub ${hub}; running: ${running.map(describe).join(", ") || "none"}` : `no local hub is running in ${path.resolve(dir)}${left}`;
      throw new LocalHubNotFound(`${which}; ${start}, or name a deployed stack with --queue-url and friends`);
    } else {
      throw new LocalHubNotFound(`${candidates.length} local hubs are running here: ${candidates.map(describe).join(", ")}; pick one with --hub <port> (or NOTIFICATION_HUB_LOCAL=<port>)`);
    }
  }
  return { ...state, notifierOptions: notifierOptionsFor(state) };
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
