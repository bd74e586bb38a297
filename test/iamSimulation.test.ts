/**
 * IAM evaluated, not read: every AWS request each serialized Lambda makes when it runs (its
 * artifact, in a fresh Node process, against the local stand-ins behind recording proxies)
 * is simulated against that function's role policy with @cloud-copilot/iam-simulate, and so
 * is a list of requests each role must never be able to make. The same for the publisher
 * policy against every request the server SDK makes. KMS requests are evaluated with the
 * hub key's own key policy as the resource policy.
 */
import { runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueryCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { OUTBOX_PARTITION } from "../core/lifecycleOutbox";
import { getAuthRow, putConnection } from "../core/tables";
import { HANDLER_NAMES } from "../handlers/manifest";
import { createNotifier } from "../server";
import { invokeArtifact, removeArtifact, writeArtifact, type Artifact } from "./support/artifacts";
import { connectionsRequests, dynamoRequests, eventsRequests, sqsRequests, ssmRequests, startRecorder, type AwsRequest, type Recorder } from "./support/awsRecorder";
import { startEventBridge, type EventBridgeStandIn } from "../local/eventBridge";
import { authorizerEvent, routeEvent, sqsEvent, sqsRecord } from "./support/events";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { sharedRun, type ProgramRun } from "./support/pulumiRun";
import { startDynamo, startSqs, type Dynamo, type Sqs } from "./support/services";
import { startParameterStore, type ParameterStore } from "./support/ssm";

const ACCOUNT = "123456789012";
const CONTEXT = { partition: "aws", region: "eu-west-1", account: ACCOUNT };
const ARN = (service: string, resource: string) => `arn:aws:${service}:eu-west-1:${ACCOUNT}:${resource}`;
const SECRET = "generated-secret-" + "x".repeat(47); // what the mocks' RandomPassword returns
const API = "hub-api-id";

let run: ProgramRun;
let dynamo: Dynamo;
let sqs: Sqs;
let management: StandaloneConnectionsEmulator;
let ssm: ParameterStore;
let bus: EventBridgeStandIn;
let recorders: { dynamodb: Recorder; sqs: Recorder; ssm: Recorder; connections: Recorder; events: Recorder };
let queueUrl: string;
let bulkQueueUrl: string;
const artifacts: Record<string, Artifact> = {};
/** What each function (and the publisher) asked AWS for, in its own run. */
const made: Record<string, AwsRequest[]> = {};

type PolicyDocument = Simulation["identityPolicies"][number]["policy"];
const inputsOf = (name: string) => run.named(name).inputs as Record<string, string>;
const policyOf = (name: string) => JSON.parse(inputsOf(name).policy) as PolicyDocument;

beforeAll(async () => {
  run = await sharedRun("development");
  const keyArn = run.ofType("aws:ssm/parameter:Parameter")[0].inputs.keyId as string;
  expect(keyArn).toBe(inputsKey());
  [dynamo, sqs, management, ssm] = await Promise.all([
    startDynamo({ connectionsTable: "hub-connections", authTable: "hub-auth", streamsTable: "hub-streams", presenceTable: "hub-presence-members", budgetTable: "hub-budget" }),
    startSqs(),
    startConnectionsEmulator({ stage: "development" }),
    startParameterStore({ "hub-jwt-secret": SECRET }),
  ]);
  // Lifecycle events (presence on in development) go to a stand-in of the hub's bus.
  bus = await startEventBridge({ buses: ["hub-events"], region: "eu-west-1" });
  const fauxQueue = sqs.createQueue("hub-notifications").queueUrl;
  bulkQueueUrl = sqs.createQueue("hub-bulk-notifications").queueUrl;
  recorders = {
    dynamodb: await startRecorder(dynamo.endpoint, dynamoRequests(CONTEXT)),
    sqs: await startRecorder(sqs.endpoint, sqsRequests(CONTEXT)),
    ssm: await startRecorder(ssm.endpoint, ssmRequests(CONTEXT, (name) => (name === "hub-jwt-secret" ? keyArn : undefined))),
    connections: await startRecorder(management.endpoint, connectionsRequests(CONTEXT, API)),
    events: await startRecorder(bus.endpoint, eventsRequests(CONTEXT)),
  };
  // The SDK sends to its configured endpoint (the recorder) when one is set, whatever the QueueUrl's host.
  queueUrl = fauxQueue;
  for (const fn of run.ofType("aws:lambda/function:Function")) artifacts[fn.name.replace(/^hub-/, "")] = writeArtifact(fn, run);
  await exercise();
}, 240_000);

afterAll(async () => {
  await Promise.all([...Object.values(recorders ?? {}).map((r) => r.stop()), dynamo?.stop(), sqs?.stop(), management?.stop(), ssm?.stop(), bus?.stop()]);
  for (const artifact of Object.values(artifacts)) removeArtifact(artifact);
});

/** Runs `work` and keeps every request the recorders saw meanwhile under `who`. */
async function recording(who: string, work: () => Promise<unknown>): Promise<void> {
  const marks = Object.values(recorders).map((r) => r.requests.length);
  await work();
  made[who] = [...(made[who] ?? []), ...Object.values(recorders).flatMap((r, i) => r.requests.slice(marks[i]))];
}

function envFor(handler: string, extra: Record<string, string> = {}): Record<string, string> {
  const variables = { ...(run.named(`hub-${handler}`).inputs as { environment: { variables: Record<string, string> } }).environment.variables };
  if (variables.MANAGEMENT_ENDPOINT) variables.MANAGEMENT_ENDPOINT = recorders.connections.endpoint;
  if (variables.QUEUE_URL) variables.QUEUE_URL = queueUrl;
  if (variables.BULK_QUEUE_URL) variables.BULK_QUEUE_URL = bulkQueueUrl;
  if (variables.EVENT_BUS_NAME) variables.EVENTS_ENDPOINT = recorders.events.endpoint;
  return {
    ...variables,
    DYNAMODB_ENDPOINT: recorders.dynamodb.endpoint,
    SQS_ENDPOINT: recorders.sqs.endpoint,
    SSM_ENDPOINT: recorders.ssm.endpoint,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    ...extra,
  };
}

async function invoke(handler: string, event: unknown, extra?: Record<string, string>) {
  const result = await invokeArtifact(artifacts[handler], event, envFor(handler, extra));
  expect(result.ok, `${handler}: ${result.error}\n${result.logs}`).toBe(true);
  return result;
}

/** Every function on its normal paths (and its fault paths that reach AWS), then the server SDK. */
async function exercise() {
  const setup = createNotifier({
    authTableName: "hub-auth",
    connectionsTableName: "hub-connections",
    managementEndpoint: management.endpoint,
    jwtSecret: SECRET,
    passcode: "p",
    region: "eu-west-1",
    endpoints: { dynamodb: dynamo.endpoint },
    bcryptCost: 4,
  });
  const token = await setup.issueToken({ userId: "ann", roomId: "room-1" });
  // $connect keeps a connection only while the auth row still holds the authorizer's generation.
  const generation = (await getAuthRow(dynamo.client, "hub-auth", "ann", "room-1"))!.generation;
  const who = { user_id: "ann", room_id: "room-1", generation };
  const message = (id: string) => sqsRecord(JSON.stringify({ room_id: "room-1", user_id: "backend", data: { n: id } }), id);

  await recording("authorizer", () => invoke("authorizer", authorizerEvent({ token })));
  await recording("connect", async () => {
    await invoke("connect", routeEvent("$connect", "iam-1", { authorizer: who }));
    await invoke("connect", routeEvent("$connect", "iam-2", { authorizer: who }));
  });
  await recording("sendMessage", () => invoke("sendMessage", routeEvent("sendMessage", "iam-1", { body: JSON.stringify({ action: "sendMessage", data: "hi" }), authorizer: who })));
  await recording("default", () => invoke("default", routeEvent("$default", "iam-1", { body: "{}" })));
  // A connection older than the handshake grace, which API Gateway no longer has.
  await putConnection(dynamo.client, "hub-connections", { connectionId: "iam-old", userId: "ann", rooms: ["room-1"], grants: ["room-1"], connectedAt: Date.now() - 60_000, generation, authKey: "room-1" });
  await recording("deliver", async () => {
    management.fault("iam-2", { status: 410, times: 1 }); // gone while opening: its row is kept
    management.fault("iam-old", { status: 410, times: 1 }); // gone: its row, then its memberships, are deleted
    await invoke("deliver", sqsEvent([message("iam-m1")]));
  });
  await recording("connect", () => invoke("connect", routeEvent("$connect", "iam-3", { authorizer: who }))); // a second member again
  await recording("deliver", async () => {
    // A room bigger than one invocation's share goes back through the queue in chunks.
    await invoke("deliver", sqsEvent([message("iam-m2")]), { LARGE_ROOM_CHUNK_SIZE: "1" });
    // SQS delivers iam-m1 again: its claim and stored frame are read back, nothing appended.
    await invoke("deliver", sqsEvent([message("iam-m1")]));
  });
  await recording("resume", async () => {
    const resume = (after: number) => JSON.stringify({ action: "resume", room_id: "room-1", after });
    await invoke("resume", routeEvent("resume", "iam-1", { body: resume(0), authorizer: who }));
    // Without the authorizer's context it reads the connection row; a 410 tries to drop it.
    management.fault("iam-1", { status: 410, times: 1 });
    await invoke("resume", routeEvent("resume", "iam-1", { body: resume(1) }));
  });
  await recording("subscribe", async () => {
    const subscribe = (room: string) => JSON.stringify({ action: "subscribe", room_id: room });
    // One process per invocation: only the paths that make different requests.
    await invoke("subscribe", routeEvent("subscribe", "iam-1", { body: subscribe("room-1"), authorizer: who }));
    // Without the authorizer's context it reads the row's grants.
    await invoke("subscribe", routeEvent("subscribe", "iam-2", { body: subscribe("room-1") }));
    // Past the limit (iam-1 is in room-1) it reads the row to say why.
    await invoke("subscribe", routeEvent("subscribe", "iam-1", { body: subscribe("room-2"), authorizer: { ...who, room_id: "", grants: '["room-*"]' } }), { MAX_ROOMS_PER_CONNECTION: "1" });
    // A room ann is new to: she joins, the room is occupied (lifecycle events); iam-1 leaves room-3 by unsubscribe, iam-2 room-4 by its close.
    await invoke("subscribe", routeEvent("subscribe", "iam-1", { body: subscribe("room-3"), authorizer: { ...who, room_id: "", grants: '["room-*"]' } }));
    await invoke("subscribe", routeEvent("subscribe", "iam-2", { body: subscribe("room-4"), authorizer: { ...who, room_id: "", grants: '["room-*"]' } }));
  });
  // Presence (on in development): a page and the counts of a room iam-1 is in; then the sweep.
  await recording("presence", () => invoke("presence", routeEvent("presence", "iam-1", { body: JSON.stringify({ action: "presence", room_id: "room-1" }) })));
  await recording("occupancy", () => invoke("occupancy", routeEvent("occupancy", "iam-1", { body: JSON.stringify({ action: "occupancy", room_id: "room-1" }) })));
  await recording("unsubscribe", async () => {
    await invoke("unsubscribe", routeEvent("unsubscribe", "iam-1", { body: JSON.stringify({ action: "unsubscribe", room_id: "room-1" }) }));
    await invoke("unsubscribe", routeEvent("unsubscribe", "iam-1", { body: JSON.stringify({ action: "unsubscribe", room_id: "room-3" }) }));
  });
  await recording("disconnect", () => invoke("disconnect", routeEvent("$disconnect", "iam-1")));
  // iam-2's close leaves ann's presence pending; with no grace the sweep decides it (a conditional delete) and tells the room.
  await recording("disconnect", () => invoke("disconnect", routeEvent("$disconnect", "iam-2")));
  await recording("sweep", () => invoke("sweep", {}, { PRESENCE_GRACE_SECONDS: "0" }));
  // Liveness (core/liveness.ts): two connections in room-1 whose last ping is long past; the
  // sweep scans for them, GETs each: one is gone (410: removed, its rooms left with timed_out),
  // the other answers (confirmed_at set; seen_at stays the pings'). A third is past API Gateway's 2 hours: no GET.
  const stale = Date.now() - 10 * 60_000;
  for (const id of ["iam-ghost", "iam-quiet"]) await putConnection(dynamo.client, "hub-connections", { connectionId: id, userId: "cy", rooms: ["room-1"], grants: ["room-1"], connectedAt: stale, generation, authKey: "room-1" });
  await putConnection(dynamo.client, "hub-connections", { connectionId: "iam-ancient", userId: "cy", rooms: ["room-1"], grants: ["room-1"], connectedAt: Date.now() - 3 * 3600_000, generation, authKey: "room-1" });
  // A fourth pinged at its told rate (seen_at 45 s after prev_seen_at) and then stopped long ago: a
  // half-open one answers GET 200, so the sweep DELETEs it on @connections without asking.
  await putConnection(dynamo.client, "hub-connections", { connectionId: "iam-halfopen", userId: "cy", rooms: ["room-1"], grants: ["room-1"], connectedAt: stale - 90_000, generation, authKey: "room-1" });
  await dynamo.client.send(
    new UpdateItemCommand({ TableName: "hub-connections", Key: { connection_id: { S: "iam-halfopen" } }, UpdateExpression: "SET seen_at = :s, prev_seen_at = :p", ExpressionAttributeValues: { ":s": { N: String(stale) }, ":p": { N: String(stale - 45_000) } } }),
  );
  management.fault("iam-ghost", { status: 410, times: 1, method: "GET" });
  await recording("sweep", () => invoke("sweep", {}));
  expect(made.sweep.map((q) => q.action)).toEqual(expect.arrayContaining(["dynamodb:Scan", "dynamodb:UpdateItem", "execute-api:ManageConnections"]));
  expect(made.sweep.filter((q) => q.action === "execute-api:ManageConnections").map((q) => q.resource.split("/")[2])).toEqual(expect.arrayContaining(["GET", "DELETE"]));
  // A 410 while delivering, with presence on: the connection's rooms lose it (presence table writes by deliver).
  await putConnection(dynamo.client, "hub-connections", { connectionId: "iam-dead", userId: "dee", rooms: ["room-1"], grants: ["room-1"], connectedAt: Date.now() - 60_000, generation, authKey: "room-1" });
  await recording("deliver", async () => {
    management.fault("iam-dead", { status: 410, times: 1 });
    await invoke("deliver", sqsEvent([message("iam-m3")]));
  });
  expect(made.deliver.filter((q) => q.resource === TABLE.presence).length, "deliver's 410 left presence").toBeGreaterThan(0);
  // The bus down: a join's lifecycle events are kept in the outbox (PutItem on the presence
  // table, core/lifecycleOutbox.ts); the next sweep reads them (Query), puts them on the bus and
  // deletes each (DeleteItem). Each request is then simulated with the rest.
  bus.refuseCalls(1_000, 500);
  await recording("subscribe", () =>
    invoke("subscribe", routeEvent("subscribe", "iam-3", { body: JSON.stringify({ action: "subscribe", room_id: "room-5" }), authorizer: { ...who, room_id: "", grants: '["room-*"]' } })),
  );
  bus.refuseCalls(0);
  const outboxItems = async () =>
    (await dynamo.client.send(new QueryCommand({ TableName: "hub-presence-members", KeyConditionExpression: "room_id = :p", ExpressionAttributeValues: { ":p": { S: OUTBOX_PARTITION } } }))).Count ?? 0;
  expect(await outboxItems(), "the join's events kept in the outbox").toBeGreaterThan(0);
  await recording("sweep", () => invoke("sweep", {}));
  expect(await outboxItems(), "the sweep emptied the outbox").toBe(0);

  const notifier = createNotifier({
    queueUrl,
    authTableName: "hub-auth",
    connectionsTableName: "hub-connections",
    streamsTableName: "hub-streams",
    managementEndpoint: recorders.connections.endpoint,
    jwtSecret: SECRET,
    passcode: "p",
    region: "eu-west-1",
    endpoints: { dynamodb: recorders.dynamodb.endpoint, sqs: recorders.sqs.endpoint },
    // Presence is on in development: revokeToken marks each row revoked (UpdateItem) before it closes it.
    presenceTableName: "hub-presence-members",
    bcryptCost: 4,
  });
  await recording("publisher", async () => {
    await notifier.issueToken({ userId: "bob", roomId: "room-1" });
    await notifier.publish({ roomId: "room-1", data: { one: 1 } });
    await notifier.publishBatch([{ roomId: "room-1", data: 1 }, { roomId: "room-2", data: 2 }]);
    await notifier.revokeToken({ userId: "ann", roomId: "room-1" }); // closes ann's live connection iam-3
    // By user: Query on the auth table for every token row of bob, then his user channel and rooms.
    await notifier.issueToken({ userId: "bob", rooms: ["room-1", "room-2/*"] });
    await notifier.revokeToken({ userId: "bob" });
    expect((await notifier.history({ roomId: "room-1", last: 10 })).length).toBeGreaterThan(0);
    // Presence reads: a Query of the room's members and a GetItem of its counter; occupancy that GetItem.
    await notifier.presence({ roomId: "room-1" });
    await notifier.occupancy({ roomId: "room-1" });
  });
}

async function decide(policy: PolicyDocument, principal: string, request: AwsRequest, context: Record<string, string | string[]> = {}): Promise<string> {
  const kms = request.action.startsWith("kms:");
  const simulation: Simulation = {
    identityPolicies: [{ name: "policy", policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    // A KMS key is only usable where its key policy also allows it.
    resourcePolicy: kms ? (JSON.parse(run.ofType("aws:kms/key:Key")[0].inputs.policy as string) as PolicyDocument) : undefined,
    request: {
      action: request.action,
      principal,
      resource: { resource: request.resource, accountId: ACCOUNT },
      contextVariables: kms ? { "kms:ViaService": "ssm.eu-west-1.amazonaws.com", "kms:CallerAccount": ACCOUNT } : context,
    },
  };
  const response = await runSimulation(simulation, {});
  if (response.resultType === "error") throw new Error(`${request.action} ${request.resource}: ${JSON.stringify(response.errors)}`);
  return response.overallResult;
}

const role = (handler: string) => `arn:aws:iam::${ACCOUNT}:role/hub-${handler}-role`;
const BUS = ARN("events", "event-bus/hub-events");
/** The functions that decide lifecycle events, and so put them on the hub's bus (events:PutEvents, nothing else there). */
const EMITTERS = ["connect", "disconnect", "subscribe", "unsubscribe", "sweep"];
/** The post paths: a 410 they meet ends a dead connection (core/liveness.ts connectionGone), whose `connection.closed` (timed_out) is theirs to put. */
const GONE_EMITTERS = ["deliver", "sendMessage", "resume"];
const connection = (stage: string, method: string) => ARN("execute-api", `${API}/${stage}/${method}/@connections/abc=`);
const TABLE = {
  connections: ARN("dynamodb", "table/hub-connections"),
  auth: ARN("dynamodb", "table/hub-auth"),
  streams: ARN("dynamodb", "table/hub-streams"),
  presence: ARN("dynamodb", "table/hub-presence-members"),
  budget: ARN("dynamodb", "table/hub-budget"),
  other: ARN("dynamodb", "table/another-app"),
};
const QUEUE = ARN("sqs", "hub-notifications");
const BULK_QUEUE = ARN("sqs", "hub-bulk-notifications");
const SECRET_PARAMETER = ARN("ssm", "parameter/hub-jwt-secret");
const logsOf = (handler: string): AwsRequest[] => [
  { action: "logs:CreateLogStream", resource: ARN("logs", `log-group:hub-${handler}-logs:log-stream:2026/11/21/[$LATEST]0123`) },
  { action: "logs:PutLogEvents", resource: ARN("logs", `log-group:hub-${handler}-logs:log-stream:2026/11/21/[$LATEST]0123`) },
];
const r = (action: string, resource: string): AwsRequest => ({ action, resource });

/** What AWS services do with the function's role on its behalf, beyond the handler's own requests. */
const SERVICE_REQUESTS: Record<string, AwsRequest[]> = {
  deliver: ["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"].flatMap((a) => [r(`sqs:${a}`, QUEUE), r(`sqs:${a}`, BULK_QUEUE)]),
};

/** What no role of the hub (nor an app backend) may ever do: read a whole table, touch another app's data, post to another stage. */
const NO_ONE: AwsRequest[] = [
  r("dynamodb:Scan", TABLE.connections),
  r("dynamodb:Scan", TABLE.auth),
  r("dynamodb:Scan", TABLE.streams),
  r("dynamodb:DeleteItem", TABLE.streams), // frames leave by TTL only
  // The budget's windows are only ever counted up (UpdateItem), never read back, put whole or deleted.
  r("dynamodb:GetItem", TABLE.budget),
  r("dynamodb:PutItem", TABLE.budget),
  r("dynamodb:DeleteItem", TABLE.budget),
  r("dynamodb:Query", TABLE.budget),
  r("dynamodb:GetItem", TABLE.other),
  r("dynamodb:PutItem", TABLE.other),
  r("execute-api:ManageConnections", connection("production", "POST")),
  r("execute-api:ManageConnections", ARN("execute-api", "another-api/development/POST/@connections/abc=")),
  r("kms:Decrypt", ARN("kms", "key/another-key")),
  r("ssm:GetParameter", ARN("ssm", "parameter/another-app-secret")),
  // Lifecycle events: onto the hub's bus only; no one of the hub routes them elsewhere or reads the bus.
  r("events:PutEvents", ARN("events", "event-bus/default")),
  r("events:PutEvents", ARN("events", "event-bus/another-bus")),
  r("events:PutRule", ARN("events", "rule/hub-events/any")),
  r("events:PutTargets", ARN("events", "rule/hub-events/any")),
  r("events:DeleteEventBus", BUS),
];

/** Requests each role must never be able to make, beyond NO_ONE's. */
const NEVER: Record<string, AwsRequest[]> = {
  authorizer: [
    r("dynamodb:UpdateItem", TABLE.budget), // it posts nothing
    r("dynamodb:PutItem", TABLE.auth),
    r("dynamodb:GetItem", TABLE.connections),
    r("dynamodb:Query", TABLE.streams),
    r("execute-api:ManageConnections", connection("development", "POST")),
  ],
  // With presence on, $connect announces a seed room's new member: it may post (never DELETE a connection).
  // With presence on (the development stack), connect and disconnect post member events, so they take budget tokens.
  connect: [
    r("dynamodb:PutItem", TABLE.auth),
    r("dynamodb:DeleteItem", TABLE.auth), // connect re-reads the auth row (revocation race), never changes it
    r("dynamodb:DeleteItem", TABLE.other),
    r("dynamodb:UpdateItem", TABLE.connections), // it writes whole items; rooms change by subscribe only
    r("dynamodb:Query", TABLE.streams),
    r("ssm:GetParameter", SECRET_PARAMETER), // the secret is the authorizer's alone
    r("kms:Decrypt", inputsKey()),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
    r("dynamodb:Query", TABLE.presence), // it changes one member, never reads a room
  ],
  disconnect: [
    r("dynamodb:DeleteItem", TABLE.auth),
    r("dynamodb:PutItem", TABLE.streams),
    r("dynamodb:PutItem", TABLE.connections), // it only removes: the row, then its memberships
    r("dynamodb:BatchWriteItem", TABLE.connections), // which could also put rows
    r("dynamodb:UpdateItem", TABLE.connections),
    r("ssm:GetParameter", SECRET_PARAMETER),
  ],
  // Many rooms (docs/protocol.md#rooms-and-user-channels): grants come from the authorizer's context, never from the auth table or the secret.
  // With presence on, a join's member events may meet a 410 and remove that connection (DeleteItem, as fan-out).
  // With presence on, the functions that change presence may queue a big room's diff flush (SendMessage on the notification queue, never the bulk one).
  subscribe: [
    r("dynamodb:GetItem", TABLE.auth),
    r("dynamodb:Query", TABLE.auth),
    r("dynamodb:Query", TABLE.presence), // it changes one member, never reads a room
    r("dynamodb:BatchWriteItem", TABLE.connections),
    r("dynamodb:Query", TABLE.connections), // the room's connections only through the room index (member events)
    r("dynamodb:PutItem", TABLE.streams),
    r("dynamodb:GetItem", TABLE.streams), // the head is a Query; frames are resume's
    r("sqs:SendMessage", BULK_QUEUE),
    r("ssm:GetParameter", SECRET_PARAMETER),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
  ],
  unsubscribe: [
    r("dynamodb:GetItem", TABLE.auth),
    r("dynamodb:Query", TABLE.streams), // an unsubscribe answers no seq
    r("dynamodb:PutItem", TABLE.connections),
    r("dynamodb:GetItem", TABLE.connections),
    r("dynamodb:BatchWriteItem", TABLE.connections),
    r("ssm:GetParameter", SECRET_PARAMETER),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
  ],
  default: [r("execute-api:ManageConnections", connection("development", "DELETE")), r("sqs:SendMessage", QUEUE), r("sqs:SendMessage", BULK_QUEUE), r("dynamodb:Query", TABLE.streams)],
  // Room streams (docs/protocol.md#room-streams): resume reads the stream, charges its replay budget on its own connection row (UpdateItem there, never on the stream), and posts to the asking connection.
  resume: [
    r("dynamodb:PutItem", TABLE.streams),
    r("dynamodb:BatchWriteItem", TABLE.connections),
    r("dynamodb:UpdateItem", TABLE.streams),
    r("dynamodb:Query", TABLE.connections),
    r("dynamodb:GetItem", TABLE.auth),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
    r("ssm:GetParameter", SECRET_PARAMETER),
  ],
  sendMessage: [
    r("dynamodb:Query", TABLE.auth),
    r("dynamodb:Query", TABLE.connections), // the table itself: only the room index
    r("execute-api:ManageConnections", connection("development", "DELETE")),
    r("ssm:GetParameter", SECRET_PARAMETER),
  ],
  deliver: [
    r("dynamodb:Query", TABLE.auth),
    r("dynamodb:DeleteItem", TABLE.auth),
    r("dynamodb:BatchWriteItem", TABLE.connections), // a 410 deletes item by item: a batch could also put rows
    r("execute-api:ManageConnections", connection("development", "DELETE")), // it posts; closing is the backend's
    r("sqs:SendMessage", ARN("sqs", "hub-dead-letters")),
    r("sqs:PurgeQueue", QUEUE),
    r("sqs:PurgeQueue", BULK_QUEUE),
    r("ssm:GetParameter", SECRET_PARAMETER),
  ],
  // Presence reads: the asking connection's row, the room's page and counter; nothing written.
  presence: [
    r("dynamodb:PutItem", TABLE.presence),
    r("dynamodb:UpdateItem", TABLE.presence),
    r("dynamodb:DeleteItem", TABLE.presence),
    r("dynamodb:UpdateItem", TABLE.connections),
    r("dynamodb:Query", ARN("dynamodb", "table/hub-connections/index/room_id-index")),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
    r("ssm:GetParameter", SECRET_PARAMETER),
  ],
  occupancy: [
    r("dynamodb:Query", TABLE.presence), // one GetItem of the counter, whatever the room's size
    r("dynamodb:PutItem", TABLE.presence),
    r("dynamodb:UpdateItem", TABLE.presence),
    r("dynamodb:Query", ARN("dynamodb", "table/hub-connections/index/room_id-index")),
    r("execute-api:ManageConnections", connection("development", "DELETE")),
  ],
  // The sweep GETs suspects and DELETEs only connections that stopped pinging at their told rate, and scans the connections table only.
  sweep: [
    r("dynamodb:PutItem", TABLE.connections),
    r("dynamodb:BatchWriteItem", TABLE.connections),
    r("dynamodb:GetItem", TABLE.auth),
    r("dynamodb:Scan", TABLE.presence),
    r("ssm:GetParameter", SECRET_PARAMETER),
    r("execute-api:ManageConnections", connection("production", "GET")),
    r("execute-api:ManageConnections", connection("production", "DELETE")),
  ],
  publisher: [
    r("dynamodb:UpdateItem", TABLE.budget),
    r("sqs:SendMessage", BULK_QUEUE), // apps publish to the notification queue; chunks are the hub's
    r("dynamodb:PutItem", TABLE.connections),
    r("dynamodb:PutItem", TABLE.streams), // history reads; only the hub appends
    r("dynamodb:UpdateItem", TABLE.streams),
    r("sqs:ReceiveMessage", QUEUE),
    r("sqs:SendMessage", ARN("sqs", "hub-dead-letters")),
    r("execute-api:ManageConnections", connection("development", "POST")), // it closes connections, never posts as the hub
    r("execute-api:ManageConnections", connection("production", "DELETE")),
    // Presence is the hub's to change; backends only read it.
    r("dynamodb:PutItem", TABLE.presence),
    r("dynamodb:UpdateItem", TABLE.presence),
    r("dynamodb:DeleteItem", TABLE.presence),
    r("dynamodb:Scan", TABLE.presence),
  ],
};
// The read-only presence routes, delivery and the rest decide no lifecycle event: they may not put one.
for (const who of ["authorizer", "default", "presence", "occupancy", "publisher"]) NEVER[who].push(r("events:PutEvents", BUS));
/** The sweep's Scan of the connections table (core/liveness.ts) is the one Scan any role may make. */
const isSweepScan = (who: string, request: AwsRequest) => who === "sweep" && request.action === "dynamodb:Scan" && request.resource === TABLE.connections;
const forbidden = (who: string) => [...NO_ONE.filter((request) => !isSweepScan(who, request)), ...NEVER[who]];

function inputsKey(): string {
  return ARN("kms", "key/hub-jwt-secret-key-0000");
}

const HANDLERS = HANDLER_NAMES;
const summary: string[] = [];

afterAll(() => {
  if (summary.length) console.log(`SUMMARY IAM simulation (iam-simulate): ${summary.join("; ")}`);
});

describe.each(HANDLERS)("the %s role, as IAM evaluates it", (handler) => {
  it("allows every request the serialized handler made in its run", async () => {
    const requests = [...(made[handler] ?? []), ...logsOf(handler), ...(SERVICE_REQUESTS[handler] ?? [])];
    expect(made[handler]?.length ?? 0, `${handler} made no AWS request: the recording is broken`).toBeGreaterThan(0);
    for (const request of requests) expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), request), `${request.action} ${request.resource}`).toBe("Allowed");
    summary.push(`${handler} ${[...new Set(made[handler].map((q) => q.action.split(":")[1]))].sort().join("/")} allowed, ${forbidden(handler).length} forbidden denied`);
  });

  it("denies every request it must never make", async () => {
    for (const request of forbidden(handler)) expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), request), `${request.action} ${request.resource}`).not.toBe("Allowed");
  });
});

describe.each(GONE_EMITTERS)("the %s role and a dead connection's lifecycle event", (handler) => {
  it("may put connection.closed (timed_out) on the hub's bus after a 410, and nowhere else", async () => {
    expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), r("events:PutEvents", BUS))).toBe("Allowed");
    expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), r("events:PutEvents", ARN("events", "event-bus/default")))).not.toBe("Allowed");
  });
});

describe.each(EMITTERS)("the %s role and lifecycle events", (handler) => {
  it("put its lifecycle events in its run, each call events:PutEvents on the hub's bus ARN, allowed", async () => {
    const puts = (made[handler] ?? []).filter((q) => q.action.startsWith("events:"));
    expect(puts.length, `${handler} put no lifecycle event in its run`).toBeGreaterThan(0);
    expect(new Set(puts.map((q) => `${q.action} ${q.resource}`))).toEqual(new Set([`events:PutEvents ${BUS}`]));
    expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), r("events:PutEvents", BUS))).toBe("Allowed");
  });
});

describe("GET @connections (is this connection still there?) is the sweep's alone", () => {
  it("the sweep may GET and DELETE a connection of its own stage (DELETE: one silent past its told ping rate), and neither of another stage", async () => {
    for (const method of ["GET", "DELETE"]) {
      expect(await decide(policyOf("hub-sweep-policy"), role("sweep"), r("execute-api:ManageConnections", connection("development", method))), method).toBe("Allowed");
      expect(await decide(policyOf("hub-sweep-policy"), role("sweep"), r("execute-api:ManageConnections", connection("production", method))), method).not.toBe("Allowed");
    }
  });
  it.each(HANDLERS.filter((h) => h !== "sweep"))("%s may not GET a connection", async (handler) => {
    expect(await decide(policyOf(`hub-${handler}-policy`), role(handler), r("execute-api:ManageConnections", connection("development", "GET")))).not.toBe("Allowed");
  });
});

describe("the keep-alive's integration role (presence on), as IAM evaluates it for API Gateway", () => {
  const keepAlive = `arn:aws:iam::${ACCOUNT}:role/hub-keepAlive-role`;
  const policy = () => policyOf("hub-keepAlive-policy");
  const write = { "dynamodb:Attributes": ["connection_id", "seen_at", "prev_seen_at"], "dynamodb:ReturnValues": "NONE" };

  it("allows the UpdateItem its request template makes: seen_at and prev_seen_at on the connections table, nothing returned", async () => {
    expect(await decide(policy(), keepAlive, r("dynamodb:UpdateItem", TABLE.connections), write)).toBe("Allowed");
    summary.push("keepAlive UpdateItem(seen_at) allowed");
  });

  it("denies any other attribute, a read-back, another action or another table", async () => {
    expect(await decide(policy(), keepAlive, r("dynamodb:UpdateItem", TABLE.connections), { ...write, "dynamodb:Attributes": ["connection_id", "rooms"] })).not.toBe("Allowed");
    expect(await decide(policy(), keepAlive, r("dynamodb:UpdateItem", TABLE.connections), { ...write, "dynamodb:ReturnValues": "ALL_OLD" })).not.toBe("Allowed");
    for (const request of [r("dynamodb:PutItem", TABLE.connections), r("dynamodb:GetItem", TABLE.connections), r("dynamodb:DeleteItem", TABLE.connections), r("dynamodb:UpdateItem", TABLE.auth), r("dynamodb:UpdateItem", TABLE.presence), r("dynamodb:UpdateItem", TABLE.other)]) {
      expect(await decide(policy(), keepAlive, request, write), `${request.action} ${request.resource}`).not.toBe("Allowed");
    }
  });
});

describe("publisherPolicyArn, as IAM evaluates it for an app backend's role", () => {
  const backend = `arn:aws:iam::${ACCOUNT}:role/app-backend`;

  it("allows every request the server SDK made (issueToken, publish, publishBatch, revokeToken, history, presence, occupancy)", async () => {
    const actions = new Set(made.publisher.map((q) => q.action));
    for (const action of ["dynamodb:PutItem", "sqs:SendMessage", "execute-api:ManageConnections"]) expect(actions, action).toContain(action);
    expect(made.publisher.filter((q) => q.action === "dynamodb:Query").map((q) => q.resource), "revokeToken({ userId }) queries the auth table").toContain(TABLE.auth);
    const presenceReads = made.publisher.filter((q) => q.resource === TABLE.presence).map((q) => q.action);
    expect(new Set(presenceReads), "notifier.presence and occupancy read the presence table").toEqual(new Set(["dynamodb:Query", "dynamodb:GetItem"]));
    for (const request of made.publisher) expect(await decide(policyOf("hub-publisher"), backend, request), `${request.action} ${request.resource}`).toBe("Allowed");
    // Reading the signing secret from its parameter, as SSM does it with the hub's key.
    for (const request of [r("ssm:GetParameter", SECRET_PARAMETER), r("kms:Decrypt", inputsKey())]) expect(await decide(policyOf("hub-publisher"), backend, request)).toBe("Allowed");
    summary.push(`publisher ${[...actions].map((a) => a.split(":")[1]).sort().join("/")} allowed, ${forbidden("publisher").length} forbidden denied`);
  });

  it("with presence on, its revocation mark writes revoked_at and nothing else on a connection row", async () => {
    const mark = r("dynamodb:UpdateItem", TABLE.connections);
    expect(made.publisher).toContainEqual(mark);
    expect(await decide(policyOf("hub-publisher"), backend, mark, { "dynamodb:Attributes": ["connection_id", "revoked_at"] })).toBe("Allowed");
    expect(await decide(policyOf("hub-publisher"), backend, mark, { "dynamodb:Attributes": ["connection_id", "rooms"] })).not.toBe("Allowed");
    expect(await decide(policyOf("hub-publisher"), backend, mark, { "dynamodb:Attributes": ["connection_id", "revoked_at"], "dynamodb:ReturnValues": "ALL_NEW" })).not.toBe("Allowed");
  });

  it("denies every request an app backend must never make", async () => {
    for (const request of forbidden("publisher")) expect(await decide(policyOf("hub-publisher"), backend, request), `${request.action} ${request.resource}`).not.toBe("Allowed");
  });

  it("the hub's key decrypts nothing outside SSM, even for a role IAM lets decrypt", async () => {
    const outsideSsm: Simulation = {
      identityPolicies: [{ name: "policy", policy: policyOf("hub-authorizer-policy") }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: JSON.parse(run.ofType("aws:kms/key:Key")[0].inputs.policy as string) as PolicyDocument,
      request: { action: "kms:Decrypt", principal: role("authorizer"), resource: { resource: inputsKey(), accountId: ACCOUNT }, contextVariables: {} },
    };
    const response = await runSimulation(outsideSsm, {});
    if (response.resultType === "error") throw new Error(JSON.stringify(response.errors));
    expect(response.overallResult).toBe("ImplicitlyDenied");
    // ...while through SSM the same role may.
    expect(await decide(policyOf("hub-authorizer-policy"), role("authorizer"), r("kms:Decrypt", inputsKey()))).toBe("Allowed");
  });
});
