/**
 * Contention benchmark: a busy room, 6 members sending 20 messages each at once, through the
 * real sendMessage handler against dynalite and the @connections emulator, with every DynamoDB
 * request counted by a recording proxy (test/support/awsRecorder.ts). Today's design against
 * the one of BEFORE_COMMIT (each concurrent writer at head + 1, one slot up per lost race), that
 * commit's tree from git (`git archive`, node_modules hard-linked, as bench/artifacts.ts does),
 * its own handler code, in the same process and run.
 *
 * Per design, a fresh dynalite: the room gets one message first (a room in use), then the 120
 * at once. Figures: time until every send was answered (the handler returned), stored,
 * refused (`hub.error`), lost (not stored), members' receipts, DynamoDB requests per message.
 *
 *   node -r ts-node/register/transpile-only bench/contention.ts [--json] [--writers 6] [--each 20]
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { DEFAULT_RETRY, type FanoutDeps } from "../core/fanout";
import { capturingLogger } from "../test/support/logs";
import { routeEvent } from "../test/support/events";
import { dynamoRequests, startRecorder } from "../test/support/awsRecorder";
import { seedConnections } from "../test/support/seed";
import { startDynamo } from "../test/support/services";
import { startConnectionsEmulator } from "../local/testing";
import { treeAt } from "./gitTree";

const ROOT = path.resolve(__dirname, "..");
/** The last commit with the head + 1 seq assignment. */
export const BEFORE_COMMIT = "914c516";

export interface ContentionRun {
  design: string;
  writers: number;
  each: number;
  /** From the first send to the last answer. */
  clearMs: number;
  stored: number;
  refused: number;
  lost: number;
  /** Stored seqs are 1..n with none missing or twice. */
  consecutive: boolean;
  /** Frames the members got, of writers × messages × members. */
  receipts: number;
  requestsPerMessage: number;
  streamsRequestsPerMessage: number;
  /** Refusals by `hub.error` code. */
  refusedCodes: Record<string, number>;
}

export interface ContentionFigures {
  date: string;
  writers: number;
  each: number;
  beforeCommit: string;
  ours: ContentionRun;
  before?: ContentionRun;
}

const CONTEXT = { partition: "aws", region: "us-east-1", account: "123456789012" };

/** One design: `root` is the tree whose handlers/sendMessage.ts is run. */
async function runDesign(design: string, root: string, writers: number, each: number): Promise<ContentionRun> {
  const streamsTable = "bench-streams";
  const dynamo = await startDynamo({ connectionsTable: "bench-connections", authTable: "bench-auth", streamsTable });
  const management = await startConnectionsEmulator();
  const recorder = await startRecorder(dynamo.endpoint, dynamoRequests(CONTEXT));
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createSendMessageHandler } = require(path.join(root, "handlers", "sendMessage")) as typeof import("../handlers/sendMessage");
    const deps: FanoutDeps = {
      db: dynamoClient({ endpoint: recorder.endpoint, region: "us-east-1" }),
      management: createConnectionsApi(management.endpoint),
      connectionsTable: dynamo.connectionsTable,
      streams: { streamsTable, retentionHours: 1 },
      log: capturingLogger().log,
      retry: { ...DEFAULT_RETRY, baseDelayMs: 1, maxDelayMs: 5 },
    };
    const room = "busy";
    const members = Array.from({ length: writers }, (_, i) => `member-${i + 1}`);
    await seedConnections(dynamo.client, dynamo.connectionsTable, members.map((id) => ({ connectionId: id, roomId: room, userId: id })));
    const sendMessage = createSendMessageHandler(deps);
    const send = (id: string, n: string) => sendMessage(routeEvent("sendMessage", id, { body: JSON.stringify({ action: "sendMessage", room_id: room, data: { type: "chat", data: n } }) }));
    await send(members[0], "warm-up"); // a room in use
    management.received.clear();
    const mark = recorder.requests.length;
    const started = process.hrtime.bigint();
    await Promise.all(members.flatMap((id) => Array.from({ length: each }, (_, n) => send(id, `${id}/${n + 1}`))));
    const clearMs = Number(process.hrtime.bigint() - started) / 1e6;
    const made = recorder.requests.slice(mark);

    const items = [];
    let startKey: Record<string, never> | undefined;
    do {
      const page = await dynamo.client.send(new QueryCommand({ TableName: streamsTable, KeyConditionExpression: "stream_id = :s", ExpressionAttributeValues: { ":s": { S: room } }, ConsistentRead: true, ExclusiveStartKey: startKey }));
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey as typeof startKey;
    } while (startKey);
    const frames = items.filter((item) => item.frame?.S && !item.skip?.BOOL).map((item) => ({ seq: Number(item.seq.N), data: (JSON.parse(item.frame.S!) as { data: { data: string } }).data.data }));
    const sent = frames.filter((f) => f.data !== "warm-up");
    const total = writers * each;
    const refusedCodes: Record<string, number> = {};
    let receipts = 0;
    for (const id of members) {
      for (const text of management.received.get(id) ?? []) {
        const frame = JSON.parse(text) as { seq?: number; data?: { type?: string; data?: { code?: string } } };
        if (frame.data?.type === "hub.error") refusedCodes[frame.data.data?.code ?? "?"] = (refusedCodes[frame.data.data?.code ?? "?"] ?? 0) + 1;
        else if (typeof frame.seq === "number") receipts++;
      }
    }
    const seqs = frames.map((f) => f.seq).sort((a, b) => a - b);
    const stored = new Set(sent.map((f) => f.data)).size;
    return {
      design,
      writers,
      each,
      clearMs: Math.round(clearMs),
      stored,
      refused: Object.values(refusedCodes).reduce((a, b) => a + b, 0),
      lost: total - stored,
      consecutive: seqs.every((seq, i) => seq === i + 1) && seqs.length === frames.length,
      receipts,
      requestsPerMessage: Math.round((made.length / total) * 100) / 100,
      streamsRequestsPerMessage: Math.round((made.filter((r) => r.resource.endsWith(`table/${streamsTable}`)).length / total) * 100) / 100,
      refusedCodes,
    };
  } finally {
    await Promise.all([recorder.stop(), management.stop(), dynamo.stop()]);
  }
}

export async function contentionScenario(writers = 6, each = 20): Promise<ContentionFigures> {
  const tree = treeAt(BEFORE_COMMIT);
  try {
    const before = tree ? await runDesign(`before (${BEFORE_COMMIT})`, tree, writers, each) : undefined;
    const ours = await runDesign("counter", ROOT, writers, each);
    return { date: new Date().toISOString(), writers, each, beforeCommit: BEFORE_COMMIT, ours, before };
  } finally {
    if (tree) fs.rmSync(tree, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { json: { type: "boolean" }, writers: { type: "string" }, each: { type: "string" } }, strict: true });
  contentionScenario(Number(values.writers ?? 6), Number(values.each ?? 20)).then(
    (figures) => {
      const describe = (r: ContentionRun) =>
        `${r.design}: cleared in ${r.clearMs} ms; stored ${r.stored}, refused ${r.refused} ${JSON.stringify(r.refusedCodes)}, lost ${r.lost}, seqs consecutive ${r.consecutive}; ` +
        `${r.streamsRequestsPerMessage} streams-table requests per message (${r.requestsPerMessage} in all); receipts ${r.receipts}`;
      for (const run of [figures.before, figures.ours]) if (run) console.error(describe(run));
      process.stdout.write(values.json ? JSON.stringify(figures) + "\n" : JSON.stringify(figures, null, 2) + "\n");
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
