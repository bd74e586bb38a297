#!/usr/bin/env node
/**
 * notification-hub CLI: run the local hub, issue tokens, publish, revoke, list connections.
 * Talks to the local hub started in this project by default (each running hub has its own file
 * in the project's .notification-hub/, found from any subfolder), or to a deployed stack with
 * flags or NOTIFICATION_HUB_* variables.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs, type ParseArgsConfig } from "util";
import { dynamoClient } from "../core/aws";
import { checkIdempotencyKey, checkRoomIds, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PUBLISH_ROOMS, normalizeId, normalizeRecipient } from "../core/messages";
import { roomPages } from "../core/tables";
import { MAX_PRESENCE_PAGE } from "../core/presence";
import { MAX_GRANTS_PER_TOKEN, normalizeRoomId, userChannel } from "../core/rooms";
import { MAX_TOKEN_TTL_SECONDS, tokenScope } from "../core/tokens";
import { DEFAULT_LOCAL_PORT, startLocalHub } from "../local";
import { checkHubAnswers, DEFAULT_STATE_DIR, locateLocalHub, LocalHubNotFound, notifierOptionsFor, projectStateDir } from "../local/stateFile";
import { createNotifier, type NotifierOptions } from "../server";

const BIN = "notification-hub";
/**
 * `dev`'s presence: on, as the development stack has it (Pulumi.development.yaml), with short
 * timers so the demo shows a closed tab leaving within seconds (the component's defaults are 30 s and 60 s).
 */
const DEV_PRESENCE = { enabled: true, graceSeconds: 5, sweepSeconds: 2 } as const;

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

const TARGET_OPTIONS: Options = {
  "queue-url": { type: "string" },
  "auth-table": { type: "string" },
  "connections-table": { type: "string" },
  "presence-table": { type: "string" },
  "streams-table": { type: "string" },
  "management-endpoint": { type: "string" },
  region: { type: "string" },
  "dynamodb-endpoint": { type: "string" },
  "sqs-endpoint": { type: "string" },
  "state-file": { type: "string" },
  hub: { type: "string" },
};

const TARGET_HELP = `
Target (default: the local hub started with \`${BIN} dev\` in this project, found from any subfolder):
  --queue-url URL             or NOTIFICATION_HUB_QUEUE_URL
  --auth-table NAME           or NOTIFICATION_HUB_AUTH_TABLE
  --connections-table NAME    or NOTIFICATION_HUB_CONNECTIONS_TABLE
  --streams-table NAME        or NOTIFICATION_HUB_STREAMS_TABLE (history)
  --presence-table NAME       or NOTIFICATION_HUB_PRESENCE_TABLE (the stack's presenceTableName: presence, occupancy; revoke leaves with reason revoked)
  --management-endpoint URL   or NOTIFICATION_HUB_MANAGEMENT_ENDPOINT (https://host/{stage})
  --region REGION             or AWS_REGION
  --dynamodb-endpoint URL, --sqs-endpoint URL   override service endpoints
  --hub PORT|URL|PID          which local hub: one of several here, or one started elsewhere (or NOTIFICATION_HUB_LOCAL)
  --state-file FILE           a local hub's state file (default: the one hub running in the nearest ${DEFAULT_STATE_DIR}/ up)
Secrets come from the environment only: NOTIFICATION_HUB_JWT_SECRET, NOTIFICATION_HUB_PASSCODE.
To capture output use npx or npm's silent mode: TOKEN=$(npx ${BIN} token --user U --room R)`;

interface Command {
  summary: string;
  usage: string;
  options: Options;
  run(values: Record<string, string | boolean | undefined>): Promise<void>;
}

function text(values: Record<string, string | boolean | undefined>, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

function required(values: Record<string, string | boolean | undefined>, name: string): string {
  const value = text(values, name);
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

/** A whole number within [min, max]; the message names the flag and the range. */
function wholeNumber(value: string | undefined, name: string, min: number, max: number, unit = ""): number | undefined {
  if (value === undefined) return undefined;
  const number = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new UsageError(`--${name} must be a whole number${unit} from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

/** A share from 0 to 1 (a decimal: 0.25 is a quarter); the message names the flag and the range. */
function share(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\s*\d*\.?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!(number >= 0 && number <= 1)) throw new UsageError(`--${name} must be a share from 0 to 1 (0.1 is one close in ten), got "${value}"`);
  return number;
}

/** An id flag (--user, --room), checked as the SDK would but named as the user typed it. */
function idFlag(values: Record<string, string | boolean | undefined>, name: string): string {
  const id = normalizeId(required(values, name), `--${name}`);
  if (!id.ok) throw new UsageError(id.reason);
  return id.value;
}

/**
 * Exactly one of --room and a user flag (--to-user for publish, --user for history): the room
 * the command reads or writes, a user's being their channel `user:U`. A --room in the
 * reserved `user:` space is refused, naming the user flag to use instead.
 */
function roomOrUser(values: Record<string, string | boolean | undefined>, userFlag: string): { room: string; toUser?: string } {
  // Empty counts as absent, as required() has it.
  const hasRoom = Boolean(text(values, "room"));
  const hasUser = Boolean(text(values, userFlag));
  if (hasRoom === hasUser) throw new UsageError(hasRoom ? `pass --room or --${userFlag}, not both` : `--room is required (or --${userFlag} U for one user's channel)`);
  if (hasUser) {
    const user = normalizeRecipient(text(values, userFlag), `--${userFlag}`);
    if (!user.ok) throw new UsageError(user.reason);
    return { room: userChannel(user.value), toUser: user.value };
  }
  const room = normalizeRoomId(text(values, "room"), "--room");
  if (!room.ok) throw new UsageError(room.reason.replace(/publish to a user with to_user_id/, `use --${userFlag} U`));
  return { room: room.value };
}

/** --data: JSON text, `@file` for a file's content, or `-` for standard input. */
function readData(raw: string): unknown {
  let text = raw;
  let from = "--data";
  if (raw === "-") {
    if (process.stdin.isTTY) throw new UsageError("--data - reads JSON from standard input, but it is a terminal; pipe something in (echo '{\"a\":1}' | ...)");
    text = fs.readFileSync(0, "utf8");
    from = "--data - (standard input)";
  } else if (raw.startsWith("@")) {
    const file = raw.slice(1);
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`--data ${raw}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    from = `--data ${raw}`;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${from} must be JSON (for text, quote it: --data '"hello"'; for a file, --data @file.json; for standard input, --data -)`);
  }
}

/** The flag or variable that sets each option, for messages that tell the user what to set. */
const SOURCES: Record<string, string> = {
  queueUrl: "--queue-url or NOTIFICATION_HUB_QUEUE_URL",
  authTableName: "--auth-table or NOTIFICATION_HUB_AUTH_TABLE",
  connectionsTableName: "--connections-table or NOTIFICATION_HUB_CONNECTIONS_TABLE",
  streamsTableName: "--streams-table or NOTIFICATION_HUB_STREAMS_TABLE",
  presenceTableName: "--presence-table or NOTIFICATION_HUB_PRESENCE_TABLE (the stack's presenceTableName output; a hub has one only with presence on)",
  managementEndpoint: "--management-endpoint or NOTIFICATION_HUB_MANAGEMENT_ENDPOINT",
  jwtSecret: "NOTIFICATION_HUB_JWT_SECRET (the stack's jwtSecret output)",
};

/** Refuses, naming what to set, when the target lacks what a command needs. */
function need(target: Target, command: string, keys: (keyof typeof SOURCES & keyof NotifierOptions)[]): void {
  const missing = keys.filter((key) => !target[key]);
  if (missing.length) throw new UsageError(`${command} needs ${missing.map((key) => SOURCES[key]).join(", and ")}`);
}

/** Where a command goes: the notifier's options, and where they came from. */
type Target = NotifierOptions & { endpoints: { sqs?: string; dynamodb?: string }; source: string };

/** Flags, then environment variables; when neither names a stack, the running local hub. */
async function resolveTarget(values: Record<string, string | boolean | undefined>): Promise<Target> {
  const env = process.env;
  const given: Target = {
    queueUrl: text(values, "queue-url") ?? env.NOTIFICATION_HUB_QUEUE_URL,
    authTableName: text(values, "auth-table") ?? env.NOTIFICATION_HUB_AUTH_TABLE,
    connectionsTableName: text(values, "connections-table") ?? env.NOTIFICATION_HUB_CONNECTIONS_TABLE,
    streamsTableName: text(values, "streams-table") ?? env.NOTIFICATION_HUB_STREAMS_TABLE,
    presenceTableName: text(values, "presence-table") ?? env.NOTIFICATION_HUB_PRESENCE_TABLE,
    managementEndpoint: text(values, "management-endpoint") ?? env.NOTIFICATION_HUB_MANAGEMENT_ENDPOINT,
    jwtSecret: env.NOTIFICATION_HUB_JWT_SECRET,
    passcode: env.NOTIFICATION_HUB_PASSCODE,
    region: text(values, "region") ?? env.AWS_REGION,
    endpoints: { sqs: text(values, "sqs-endpoint"), dynamodb: text(values, "dynamodb-endpoint") },
    source: "flags and environment",
  };
  if (given.queueUrl || given.authTableName || given.connectionsTableName || given.streamsTableName || given.presenceTableName || given.managementEndpoint) return given;

  const hub = await locateLocalHub({ stateFile: text(values, "state-file"), hub: text(values, "hub") });
  // A hub killed without its cleanup leaves a file whose endpoints answer nothing: say so
  // here rather than with the SDK's bare ECONNREFUSED.
  await checkHubAnswers(hub);
  const options = notifierOptionsFor(hub);
  return { ...options, endpoints: options.endpoints ?? {}, source: hub.file };
}

async function notifierFor(values: Record<string, string | boolean | undefined>, command: string, keys: Parameters<typeof need>[2]) {
  const target = await resolveTarget(values);
  need(target, command, keys);
  return { target, notifier: createNotifier(target) };
}

const commands: Record<string, Command> = {
  dev: {
    summary: "run the whole hub on this machine (no AWS account)",
    usage: `${BIN} dev [--port 8787] [--host 127.0.0.1] [--stage local] [--data-dir DIR] [--no-presence] [--events-url URL] [--drop-disconnect SHARE] [--json] [--log-level warn]

  --port P          HTTP/WebSocket port; 0 picks a free one (default NOTIFICATION_HUB_PORT or 8787)
  --host H          interface to listen on (default 127.0.0.1)
  --stage S         stage, the WebSocket URL's path (default local)
  --data-dir DIR    keep tables and dev secrets across restarts
  --no-presence     without presence (on by default, as in Pulumi.development.yaml, with a
                    ${DEV_PRESENCE.graceSeconds} s grace and a ${DEV_PRESENCE.sweepSeconds} s sweep so leaves show quickly)
  --events-url URL  POST each lifecycle event (JSON, one per request, as an EventBridge API
                    destination) to URL; no answer, 429 or 5xx are retried, a failure is logged
  --drop-disconnect SHARE
                    never run $disconnect for this share of closes, 0 to 1 (1: every one), as
                    API Gateway may: presence's sweep must find those connections dead and they
                    leave with reason timed_out (default 0)
  --json            print one JSON line with the endpoints once ready
  --log-level L     debug | info | warn | error (default warn)
  --state-file F    where the CLI finds this hub (default: a file of its own in the project's ${DEFAULT_STATE_DIR}/)

Capture --json with npx or npm's silent mode (npm run prints banner lines otherwise):
  npx ${BIN} dev --port 0 --json      npm run -s dev -- --port 0 --json`,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      stage: { type: "string" },
      "data-dir": { type: "string" },
      "no-presence": { type: "boolean" },
      "events-url": { type: "string" },
      "drop-disconnect": { type: "string" },
      json: { type: "boolean" },
      "log-level": { type: "string" },
      "state-file": { type: "string" },
    },
    async run(values) {
      const level = text(values, "log-level") ?? "warn";
      if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error`);
      // NOTIFICATION_HUB_PORT=0 lets scripts (and the README's test) run `npm run dev` as written on any free port.
      const port = wholeNumber(text(values, "port") ?? process.env.NOTIFICATION_HUB_PORT, "port", 0, 65535) ?? DEFAULT_LOCAL_PORT;
      const eventsUrl = text(values, "events-url");
      if (eventsUrl !== undefined && values["no-presence"]) throw new UsageError("--events-url needs presence: lifecycle events exist only with presence on (drop --no-presence)");
      if (eventsUrl !== undefined && !/^https?:\/\/./.test(eventsUrl)) throw new UsageError(`--events-url must be an http:// or https:// URL, got "${eventsUrl}"`);
      const dropDisconnect = share(text(values, "drop-disconnect"), "drop-disconnect");
      if (dropDisconnect && values["no-presence"]) throw new UsageError("--drop-disconnect needs presence: without it no sweep removes the connections whose $disconnect was dropped (drop --no-presence)");
      let hub;
      try {
        hub = await startLocalHub({
          ...(eventsUrl !== undefined ? { eventsUrl } : {}),
          ...(dropDisconnect ? { dropDisconnect } : {}),
          port,
          host: text(values, "host"),
          stage: text(values, "stage"),
          dataDir: text(values, "data-dir"),
          ...(values["no-presence"] ? {} : { presence: DEV_PRESENCE }),
          logLevel: level as "warn",
          ...(text(values, "state-file") ? { stateFile: path.resolve(text(values, "state-file")!) } : { stateDir: projectStateDir() }),
        });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw new UsageError(`port ${port} is in use; pass --port 0 for any free port`);
        throw err;
      }
      const { notifier: _notifier, stop, ...info } = hub;
      void _notifier;
      if (values.json) {
        process.stdout.write(JSON.stringify(info) + "\n");
      } else {
        const cli = __filename.endsWith(".ts") ? "npm run -s cli --" : `npx ${BIN}`;
        process.stdout.write(
          [
            "notification-hub local hub is ready",
            `  console          ${info.httpUrl}`,
            `  demo page        ${info.httpUrl}demo`,
            `  websocket        ${info.websocketUrl}  (token in Sec-WebSocket-Protocol: notification-hub, <token>; or ?token=<token>)`,
            `  @connections     ${info.managementEndpoint}/@connections/{connectionId}`,
            `  queue            ${info.queueUrl}`,
            `  dead letters     ${info.deadLetterQueueUrl}`,
            `  dynamodb         ${info.dynamodbEndpoint}  (tables ${info.connectionsTableName}, ${info.authTableName})`,
            `  presence         ${info.presenceTableName ? `on (table ${info.presenceTableName}; grace ${DEV_PRESENCE.graceSeconds} s, sweep ${DEV_PRESENCE.sweepSeconds} s${dropDisconnect ? `; $disconnect dropped for ${Number((dropDisconnect * 100).toFixed(1))} % of closes` : ""})` : "off"}`,
            `  sqs              ${info.sqsEndpoint}`,
            ...(info.eventBusName ? [`  events bus       ${info.eventBusName}  (lifecycle events: the console's Events tab${eventsUrl ? `; each POSTed to ${eventsUrl}` : ""})`] : []),
            "Try:",
            `  TOKEN=$(${cli} token --user alice --room lobby)`,
            `  ${cli} publish --room lobby --data '{"type":"info","data":"hello"}'`,
            `  ${cli} publish --to-user alice --data '{"type":"dm","data":"hi alice"}'   # every connection of alice`,
            `  ${cli} connections --room lobby`,
            ...(info.presenceTableName ? [`  ${cli} presence --room lobby`] : []),
            "Ctrl-C stops the hub.",
            "",
          ].join("\n"),
        );
      }
      await new Promise<void>((resolve) => {
        const shutdown = () => {
          process.off("SIGINT", shutdown);
          process.off("SIGTERM", shutdown);
          if (!values.json) process.stdout.write("stopping…\n");
          void stop().then(resolve);
        };
        process.on("SIGINT", shutdown);
        process.on("SIGTERM", shutdown);
      });
    },
  },
  token: {
    summary: "print a connect token for a user in a room, or in several rooms",
    usage: `${BIN} token --user U (--room R | --rooms A,B,prefix/*) [--ttl SECONDS] [--json]\n\n  --room R        the seed's one-room token (claim room_id)\n  --rooms LIST    comma-separated room ids and prefixes ending in * (claim rooms; 1 to ${MAX_GRANTS_PER_TOKEN})\n  --ttl SECONDS   token lifetime, 1 to ${MAX_TOKEN_TTL_SECONDS} (default 3600)\n  --json          print {"token", "userId", "roomId" or "rooms", "expiresAt"} instead of the bare token\n${TARGET_HELP}`,
    options: { user: { type: "string" }, room: { type: "string" }, rooms: { type: "string" }, ttl: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const user = idFlag(values, "user");
      const scope = tokenScope(
        values.room === undefined ? undefined : text(values, "room") ?? "",
        values.rooms === undefined ? undefined : (text(values, "rooms") ?? "").split(",").map((room) => room.trim()),
        { roomId: "--room", rooms: "--rooms" },
      );
      if (!scope.ok) throw new UsageError(scope.reason);
      const ttlSeconds = wholeNumber(text(values, "ttl"), "ttl", 1, MAX_TOKEN_TTL_SECONDS, " of seconds") ?? 3600;
      const { notifier } = await notifierFor(values, "token", ["authTableName", "jwtSecret"]);
      const { roomId, grants } = scope.value;
      const token = await notifier.issueToken(roomId !== undefined ? { userId: user, roomId, ttlSeconds } : { userId: user, rooms: grants, ttlSeconds });
      const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
      const shown = roomId !== undefined ? { roomId } : { rooms: grants };
      process.stdout.write((values.json ? JSON.stringify({ token, userId: user, ...shown, expiresAt }) : token) + "\n");
    },
  },
  publish: {
    summary: "send a notification to a room, or to one user, through the queue",
    usage: `${BIN} publish (--room R | --rooms A,B,C | --to-user U) [--user U] [--idempotency-key K] --data JSON|@FILE|- [--json]

  --room R        every connection in room R
  --rooms A,B,C   each of these rooms once (up to ${MAX_PUBLISH_ROOMS}, comma-separated), each with its own seq and id
  --to-user U     every connection of user U, in any room (their channel user:U)
  --data JSON     any JSON value; the seed's browser code reads {"type": ..., "data": ...}
  --data @FILE    the JSON in FILE;  --data -  the JSON on standard input
  --user U        the sender, shown to clients as user_id (not a filter)
  --idempotency-key K
                  1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters: publishing again with K to the same room or
                  user within 24 hours is the same notification (same message id, delivered once)
  --json          print {"messageId", "roomId"} (roomId is "user:U" for --to-user; "roomIds" for --rooms) instead of a sentence
${TARGET_HELP}`,
    options: {
      room: { type: "string" },
      rooms: { type: "string" },
      "to-user": { type: "string" },
      user: { type: "string" },
      data: { type: "string" },
      "idempotency-key": { type: "string" },
      json: { type: "boolean" },
      ...TARGET_OPTIONS,
    },
    async run(values) {
      let rooms: string[] | undefined;
      let room = "";
      let toUser: string | undefined;
      if (values.rooms !== undefined) {
        if (text(values, "room") || text(values, "to-user")) throw new UsageError("pass one of --room, --rooms and --to-user");
        const checked = checkRoomIds(String(values.rooms).split(","), "--rooms");
        if (!checked.ok) throw new UsageError(checked.reason.replace(/--rooms\[(\d+)\]/g, (_, i: string) => `--rooms entry ${Number(i) + 1}`).replace(/to_user_id/, "--to-user U"));
        rooms = checked.value;
      } else {
        ({ room, toUser } = roomOrUser(values, "to-user"));
      }
      let idempotencyKey: string | undefined;
      if (values["idempotency-key"] !== undefined) {
        const key = checkIdempotencyKey(values["idempotency-key"], "--idempotency-key");
        if (!key.ok) throw new UsageError(key.reason);
        idempotencyKey = key.value;
      }
      const user = text(values, "user") === undefined ? null : idFlag(values, "user");
      const data = readData(required(values, "data"));
      const { notifier } = await notifierFor(values, "publish", ["queueUrl"]);
      let messageId: string;
      try {
        const input =
          rooms !== undefined
            ? { roomIds: rooms, userId: user, data, idempotencyKey }
            : toUser === undefined
              ? { roomId: room, userId: user, data, idempotencyKey }
              : { toUserId: toUser, userId: user, data, idempotencyKey };
        ({ messageId } = await notifier.publish(input));
      } catch (err) {
        // Ids are checked above; what the SDK still refuses is the data (size, serializability).
        // SQS's own refusal of the body (the SDK escapes what it refuses, so only a queue stricter than SQS) is about --data too.
        const refused = /InvalidMessageContents/.test((err as Error)?.name ?? "");
        if (err instanceof TypeError || err instanceof RangeError || refused) throw new UsageError(`--data: ${(err as Error).message.replace(/^publish: /, "")}`);
        throw err;
      }
      if (rooms !== undefined) {
        process.stdout.write(values.json ? JSON.stringify({ messageId, roomIds: rooms }) + "\n" : `published to ${rooms.length} room(s): message id ${messageId}\n`);
        return;
      }
      const to = toUser === undefined ? `room ${room}` : `user ${toUser} (${room})`;
      process.stdout.write(values.json ? JSON.stringify({ messageId, roomId: room }) + "\n" : `published to ${to}: message id ${messageId}\n`);
    },
  },
  // Room streams (docs/protocol.md#room-streams).
  history: {
    summary: "print a room's stored notifications in seq order",
    usage: `${BIN} history (--room R | --user U) [--after N | --last N] [--limit N] [--json]

  --room R    a room's stream
  --user U    instead: user U's channel (user:U), what publish --to-user U sent
  --after N   those with seq greater than N (default 0: the oldest kept)
  --last N    instead: the newest N (at most 1000)
  --limit N   at most N frames (1 to 1000, default 1000)
  --json      one frame per line, exactly as clients got it
${TARGET_HELP}`,
    options: { room: { type: "string" }, user: { type: "string" }, after: { type: "string" }, last: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const { room } = roomOrUser(values, "user");
      const after = wholeNumber(text(values, "after"), "after", 0, Number.MAX_SAFE_INTEGER);
      const last = wholeNumber(text(values, "last"), "last", 0, 1000);
      if (after !== undefined && last !== undefined) throw new UsageError("pass --after or --last, not both");
      const { notifier } = await notifierFor(values, "history", ["streamsTableName"]);
      const frames = await notifier.history({ roomId: room, after, last, limit: wholeNumber(text(values, "limit"), "limit", 1, 1000) });
      for (const frame of frames) {
        const line = values.json ? JSON.stringify(frame) : `${frame.seq}\t${frame.origin}\t${frame.user_id ?? "-"}\t${JSON.stringify(frame.data)}`;
        process.stdout.write(line + "\n");
      }
      if (!values.json && frames.length === 0) process.stderr.write(`no stored notifications in ${room}\n`);
    },
  },
  revoke: {
    summary: "revoke a user's tokens (all of them, or one room's) and close their connections",
    usage: `${BIN} revoke --user U [--room R]\n\n  without --room  every token of the user (both forms); closes all their connections\n  --room R        only the user's one-room token for R; closes their connections made with it\n${TARGET_HELP}`,
    options: { user: { type: "string" }, room: { type: "string" }, ...TARGET_OPTIONS },
    async run(values) {
      const user = idFlag(values, "user");
      const room = values.room === undefined ? undefined : idFlag(values, "room");
      const { notifier } = await notifierFor(values, "revoke", ["authTableName", "connectionsTableName", "managementEndpoint"]);
      const { closedConnections } = await notifier.revokeToken(room === undefined ? { userId: user } : { userId: user, roomId: room });
      process.stdout.write(`revoked ${room === undefined ? `every token of ${user}` : `${user} in ${room}`}; closed ${closedConnections} connection(s)\n`);
    },
  },
  connections: {
    summary: "list the live connections of a room",
    usage: `${BIN} connections --room R [--json]\n${TARGET_HELP}`,
    options: { room: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = idFlag(values, "room");
      const target = await resolveTarget(values);
      need(target, "connections", ["connectionsTableName"]);
      const db = dynamoClient({ endpoint: target.endpoints.dynamodb, region: target.region });
      const rows: { connectionId: string; userId: string | null }[] = [];
      for await (const page of roomPages(db, target.connectionsTableName!, room)) rows.push(...page.connections);
      if (values.json) process.stdout.write(JSON.stringify(rows) + "\n");
      else {
        process.stdout.write(`${rows.length} connection(s) in room ${room}\n`);
        for (const row of rows) process.stdout.write(`  ${row.connectionId}  ${row.userId ?? ""}\n`);
      }
    },
  },
  // Presence (docs/protocol.md#presence): what the hub's presence and occupancy actions answer, read from the table.
  presence: {
    summary: "list a room's members (per user), a page at a time",
    usage: `${BIN} presence --room R [--after CURSOR] [--limit N] [--json]

  --room R          the room
  --after CURSOR    the page after the one whose "next" this is
  --limit N         members per page, 1 to ${MAX_PRESENCE_PAGE} (default ${MAX_PRESENCE_PAGE})
  --json            {"members", "count", "next"} as the SDK returns it
Needs a hub with presence on (\`${BIN} dev\` has it).
${TARGET_HELP}`,
    options: { room: { type: "string" }, after: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = idFlag(values, "room");
      const limit = wholeNumber(text(values, "limit"), "limit", 1, MAX_PRESENCE_PAGE);
      const after = values.after === undefined ? undefined : required(values, "after");
      const { notifier } = await notifierFor(values, "presence", ["presenceTableName"]);
      const page = await notifier.presence({ roomId: room, after, limit });
      if (values.json) return void process.stdout.write(JSON.stringify(page) + "\n");
      process.stdout.write(`${page.count} member(s) in room ${room}${page.next || after ? ` (this page: ${page.members.length})` : ""}\n`);
      for (const member of page.members) {
        process.stdout.write(`  ${member.user_id}  ${member.connections} connection(s)  since ${new Date(member.since).toISOString()}\n`);
      }
      if (page.next) process.stdout.write(`next page: ${BIN} presence --room ${room} --after ${page.next}\n`);
    },
  },
  occupancy: {
    summary: "count a room's connections and member users",
    usage: `${BIN} occupancy --room R [--json]\n\n  --json   {"connections", "users"}\nNeeds a hub with presence on.\n${TARGET_HELP}`,
    options: { room: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = idFlag(values, "room");
      const { notifier } = await notifierFor(values, "occupancy", ["presenceTableName"]);
      const counts = await notifier.occupancy({ roomId: room });
      process.stdout.write(values.json ? JSON.stringify(counts) + "\n" : `room ${room}: ${counts.users} user(s), ${counts.connections} connection(s)\n`);
    },
  },
};

function mainHelp(): string {
  return [
    `usage: ${BIN} <command> [options]`,
    "",
    ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(12)} ${command.summary}`),
    "",
    `Run \`${BIN} <command> --help\` for a command's options.`,
  ].join("\n");
}

const NO_CREDENTIALS =
  "no AWS credentials for the deployed stack: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or drop the stack flags to use the local hub";

/**
 * `--ttl -5` and `--data -` as two words: parseArgs would take "-5" for an option and refuse
 * with "argument is ambiguous"; joined as `--ttl=-5` the value reaches our own check.
 */
function joinDashValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const next = args[i + 1];
    if (flag.startsWith("--") && options[flag.slice(2)]?.type === "string" && next !== undefined && /^-(\d|\.\d|$)/.test(next)) {
      out.push(`${flag}=${next}`);
      i++;
    } else out.push(flag);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(mainHelp() + "\n");
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`${BIN}: unknown command "${name}" (commands: ${Object.keys(commands).join(", ")})\n`);
    return 2;
  }
  try {
    const { values } = parseArgs({ args: joinDashValues(rest, command.options), options: { ...command.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
    if (values.help) {
      process.stdout.write(`usage: ${command.usage}\n`);
      return 0;
    }
    await command.run(values as Record<string, string | boolean | undefined>);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
    const validation = err instanceof TypeError || err instanceof RangeError || err instanceof LocalHubNotFound;
    const message = (err as Error).name === "CredentialsProviderError" ? NO_CREDENTIALS : (err as Error).message.split("\n")[0];
    process.stderr.write(`${BIN} ${name}: ${message}${usage ? ` (see ${BIN} ${name} --help)` : ""}\n`);
    return usage || validation ? 2 : 1;
  }
}

/**
 * A reader that stops early (`dev | head -2`) closes our standard output: later writes fail
 * with EPIPE, which would crash the process with a stack (and `dev` before it stopped its hub
 * and removed its state file). Output nobody reads is dropped; the command carries on.
 */
export function toleratePipeClose(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE" || err.code === "ERR_STREAM_DESTROYED") return;
    throw err;
  });
}

/** Left by tools/prepare.js when npx's install of this clone built dist/: said once, then removed. */
function sayNpxBuild(): void {
  const mark = path.join(__dirname, "..", ".built-for-npx");
  if (!fs.existsSync(mark)) return;
  fs.rmSync(mark, { force: true });
  process.stderr.write(`${BIN}: this first npx call built dist/ (npx installs this clone into its cache, which runs its prepare script); later calls start at once\n`);
}

if (require.main === module) {
  toleratePipeClose(process.stdout);
  toleratePipeClose(process.stderr);
  sayNpxBuild();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${BIN}: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
