#!/usr/bin/env node
/**
 * notification-hub CLI: run the local hub, issue tokens, publish, revoke, list connections.
 * Talks to the local hub by default (its endpoints are in .notification-hub/local.json while
 * it runs), or to a deployed stack with flags or NOTIFICATION_HUB_* environment variables.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs, type ParseArgsConfig } from "util";
import { dynamoClient } from "../core/aws";
import { roomPages } from "../core/tables";
import { DEFAULT_LOCAL_PORT, startLocalHub } from "../local";
import { createNotifier, type NotifierOptions } from "../server";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const BIN = "notification-hub";
export const DEFAULT_STATE_FILE = path.join(".notification-hub", "local.json");

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

const TARGET_OPTIONS: Options = {
  "queue-url": { type: "string" },
  "auth-table": { type: "string" },
  "connections-table": { type: "string" },
  "streams-table": { type: "string" },
  "management-endpoint": { type: "string" },
  region: { type: "string" },
  "dynamodb-endpoint": { type: "string" },
  "sqs-endpoint": { type: "string" },
  "state-file": { type: "string" },
};

const TARGET_HELP = `
Target (default: the local hub started with \`${BIN} dev\` in this folder):
  --queue-url URL             or NOTIFICATION_HUB_QUEUE_URL
  --auth-table NAME           or NOTIFICATION_HUB_AUTH_TABLE
  --connections-table NAME    or NOTIFICATION_HUB_CONNECTIONS_TABLE
  --streams-table NAME        or NOTIFICATION_HUB_STREAMS_TABLE (history)
  --management-endpoint URL   or NOTIFICATION_HUB_MANAGEMENT_ENDPOINT (https://host/{stage})
  --region REGION             or AWS_REGION
  --dynamodb-endpoint URL, --sqs-endpoint URL   override service endpoints
  --state-file FILE           the local hub's state file (default ${DEFAULT_STATE_FILE})
Secrets come from the environment only: NOTIFICATION_HUB_JWT_SECRET, NOTIFICATION_HUB_PASSCODE.`;

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

function positiveInteger(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  return number;
}

/** Where a command goes: the notifier's options, and where they came from. */
type Target = NotifierOptions & { endpoints: { sqs?: string; dynamodb?: string }; source: string };

/** Flags, then environment variables; when neither names a stack, the running local hub. */
function resolveTarget(values: Record<string, string | boolean | undefined>): Target {
  const env = process.env;
  const given: Target = {
    queueUrl: text(values, "queue-url") ?? env.NOTIFICATION_HUB_QUEUE_URL,
    authTableName: text(values, "auth-table") ?? env.NOTIFICATION_HUB_AUTH_TABLE,
    connectionsTableName: text(values, "connections-table") ?? env.NOTIFICATION_HUB_CONNECTIONS_TABLE,
    streamsTableName: text(values, "streams-table") ?? env.NOTIFICATION_HUB_STREAMS_TABLE,
    managementEndpoint: text(values, "management-endpoint") ?? env.NOTIFICATION_HUB_MANAGEMENT_ENDPOINT,
    jwtSecret: env.NOTIFICATION_HUB_JWT_SECRET,
    passcode: env.NOTIFICATION_HUB_PASSCODE,
    region: text(values, "region") ?? env.AWS_REGION,
    endpoints: { sqs: text(values, "sqs-endpoint"), dynamodb: text(values, "dynamodb-endpoint") },
    source: "flags and environment",
  };
  if (given.queueUrl || given.authTableName || given.connectionsTableName || given.streamsTableName || given.managementEndpoint) return given;

  const stateFile = text(values, "state-file") ?? DEFAULT_STATE_FILE;
  if (!fs.existsSync(stateFile)) {
    throw new UsageError(`no local hub is running here (no ${stateFile}); start one with \`${BIN} dev\`, or name a deployed stack with --queue-url and friends`);
  }
  const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as Record<string, string> & { credentials?: NotifierOptions["credentials"] };
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
    source: stateFile,
  };
}

function notifierFor(values: Record<string, string | boolean | undefined>) {
  const target = resolveTarget(values);
  return { target, notifier: createNotifier(target) };
}

const commands: Record<string, Command> = {
  dev: {
    summary: "run the whole hub on this machine (no AWS account)",
    usage: `${BIN} dev [--port 8787] [--host 127.0.0.1] [--stage local] [--data-dir DIR] [--json] [--log-level warn]

  --port P          HTTP/WebSocket port; 0 picks a free one (default 8787)
  --host H          interface to listen on (default 127.0.0.1)
  --stage S         stage, the WebSocket URL's path (default local)
  --data-dir DIR    keep tables and dev secrets across restarts
  --json            print one JSON line with the endpoints once ready
  --log-level L     debug | info | warn | error (default warn)
  --state-file F    where the CLI finds this hub (default ${DEFAULT_STATE_FILE})`,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      stage: { type: "string" },
      "data-dir": { type: "string" },
      json: { type: "boolean" },
      "log-level": { type: "string" },
      "state-file": { type: "string" },
    },
    async run(values) {
      const level = text(values, "log-level") ?? "warn";
      if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error`);
      const port = positiveInteger(text(values, "port"), "port") ?? DEFAULT_LOCAL_PORT;
      let hub;
      try {
        hub = await startLocalHub({
          port,
          host: text(values, "host"),
          stage: text(values, "stage"),
          dataDir: text(values, "data-dir"),
          logLevel: level as "warn",
          stateFile: path.resolve(text(values, "state-file") ?? DEFAULT_STATE_FILE),
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
        const cli = __filename.endsWith(".ts") ? "npm run cli --" : `npx ${BIN}`;
        process.stdout.write(
          [
            "notification-hub local hub is ready",
            `  demo page        ${info.httpUrl}`,
            `  websocket        ${info.websocketUrl}?token=<token>`,
            `  @connections     ${info.managementEndpoint}/@connections/{connectionId}`,
            `  queue            ${info.queueUrl}`,
            `  dead letters     ${info.deadLetterQueueUrl}`,
            `  dynamodb         ${info.dynamodbEndpoint}  (tables ${info.connectionsTableName}, ${info.authTableName})`,
            `  sqs              ${info.sqsEndpoint}`,
            "Try:",
            `  ${cli} token --user alice --room lobby`,
            `  ${cli} publish --room lobby --data '{"type":"info","data":"hello"}'`,
            `  ${cli} connections --room lobby`,
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
    summary: "print a connect token for a user in a room",
    usage: `${BIN} token --user U --room R [--ttl SECONDS]\n${TARGET_HELP}`,
    options: { user: { type: "string" }, room: { type: "string" }, ttl: { type: "string" }, ...TARGET_OPTIONS },
    async run(values) {
      const user = required(values, "user");
      const room = required(values, "room");
      const ttlSeconds = positiveInteger(text(values, "ttl"), "ttl");
      const { notifier } = notifierFor(values);
      process.stdout.write((await notifier.issueToken({ userId: user, roomId: room, ttlSeconds })) + "\n");
    },
  },
  publish: {
    summary: "send a notification to a room through the queue",
    usage: `${BIN} publish --room R [--user U] --data JSON\n\n  --data JSON   any JSON value; the seed's browser code reads {"type": ..., "data": ...}\n${TARGET_HELP}`,
    options: { room: { type: "string" }, user: { type: "string" }, data: { type: "string" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = required(values, "room");
      const raw = required(values, "data");
      let data: unknown;
      try {
        data = JSON.parse(raw);
      } catch {
        throw new UsageError(`--data must be JSON (for text, quote it: --data '"hello"')`);
      }
      const { notifier } = notifierFor(values);
      const { messageId } = await notifier.publish({ roomId: room, userId: text(values, "user") ?? null, data });
      process.stdout.write(messageId + "\n");
    },
  },
  // Room streams (issue 13).
  history: {
    summary: "print a room's stored notifications in seq order",
    usage: `${BIN} history --room R [--after N | --last N] [--limit N] [--json]

  --after N   those with seq greater than N (default 0: the oldest kept)
  --last N    instead: the newest N (at most 1000)
  --json      one frame per line, exactly as clients got it
${TARGET_HELP}`,
    options: { room: { type: "string" }, after: { type: "string" }, last: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = required(values, "room");
      const after = positiveInteger(text(values, "after"), "after");
      const last = positiveInteger(text(values, "last"), "last");
      if (after !== undefined && last !== undefined) throw new UsageError("pass --after or --last, not both");
      const { notifier } = notifierFor(values);
      const frames = await notifier.history({ roomId: room, after, last, limit: positiveInteger(text(values, "limit"), "limit") });
      for (const frame of frames) {
        const line = values.json ? JSON.stringify(frame) : `${frame.seq}\t${frame.origin}\t${frame.user_id ?? "-"}\t${JSON.stringify(frame.data)}`;
        process.stdout.write(line + "\n");
      }
      if (!values.json && frames.length === 0) process.stderr.write(`no stored notifications in ${room}\n`);
    },
  },
  revoke: {
    summary: "revoke a user's tokens for a room and close their connections",
    usage: `${BIN} revoke --user U --room R\n${TARGET_HELP}`,
    options: { user: { type: "string" }, room: { type: "string" }, ...TARGET_OPTIONS },
    async run(values) {
      const user = required(values, "user");
      const room = required(values, "room");
      const { notifier } = notifierFor(values);
      const { closedConnections } = await notifier.revokeToken({ userId: user, roomId: room });
      process.stdout.write(`revoked ${user} in ${room}; closed ${closedConnections} connection(s)\n`);
    },
  },
  connections: {
    summary: "list the live connections of a room",
    usage: `${BIN} connections --room R [--json]\n${TARGET_HELP}`,
    options: { room: { type: "string" }, json: { type: "boolean" }, ...TARGET_OPTIONS },
    async run(values) {
      const room = required(values, "room");
      const target = resolveTarget(values);
      if (!target.connectionsTableName) throw new UsageError("--connections-table is required");
      const db = dynamoClient({ endpoint: target.endpoints.dynamodb, region: target.region });
      const rows: { connectionId: string; userId: string | null }[] = [];
      for await (const page of roomPages(db, target.connectionsTableName, room)) rows.push(...page.connections);
      if (values.json) process.stdout.write(JSON.stringify(rows) + "\n");
      else {
        process.stdout.write(`${rows.length} connection(s) in room ${room}\n`);
        for (const row of rows) process.stdout.write(`  ${row.connectionId}  ${row.userId ?? ""}\n`);
      }
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
    const { values } = parseArgs({ args: rest, options: { ...command.options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
    if (values.help) {
      process.stdout.write(`usage: ${command.usage}\n`);
      return 0;
    }
    await command.run(values as Record<string, string | boolean | undefined>);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
    const validation = err instanceof TypeError || err instanceof RangeError;
    const message = (err as Error).message.split("\n")[0];
    process.stderr.write(`${BIN} ${name}: ${message}${usage ? ` (see ${BIN} ${name} --help)` : ""}\n`);
    return usage || validation ? 2 : 1;
  }
}

if (require.main === module) {
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
