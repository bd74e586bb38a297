/**
 * Every handler of the hub, as data: how it is triggered, what its zip holds, what it may
 * do (grants by resource, never by ARN: the component turns resources into ARNs), its
 * memory and timeout, and the variables it is given. The component, the zip contents
 * (components/lambdaPackages.ts), the IAM tests and the local hub all read this table.
 *
 * Data only: it imports no handler (handlers/entryPoints.ts finds each one by its key:
 * module `handlers/<key>` exporting `<key>FromEnvironment`), and no Lambda imports it at run
 * time (each zip holds only its own code).
 */
import type { EnvKey } from "../core/aws";

/** The hub's resources a handler can be granted actions on. */
export type HubResource =
  | "connectionsTable"
  /** The connections table's room index (core/schema.ts ROOM_INDEX_NAME). */
  | "roomIndex"
  | "authTable"
  /** Room streams (core/streams.ts): stored frames and their claims. */
  | "streamsTable"
  | "queue"
  /** The big-room lane's queue: chunks of big rooms, consumed by deliver through its own mapping. */
  | "bulkQueue"
  /** The `@connections` budget's windows (core/budget.ts). */
  | "budgetTable"
  /** POST to any connection of this API's stage (@connections). */
  | "postToConnections"
  /** GET any connection of this API's stage (@connections): the sweep's liveness check. */
  | "getConnections"
  /** DELETE any connection of this API's stage (@connections): the sweep's end of a connection that stopped pinging at its told rate. */
  | "deleteConnections"
  | "jwtSecretParameter"
  /** The KMS key of the secret parameter (decrypt through SSM only, by the key's policy). */
  | "jwtSecretKey"
  /** Presence (core/presence.ts): exists only when the component's `presence` is on. */
  | "presenceTable"
  /** The hub's EventBridge bus of lifecycle events (core/lifecycleEvents.ts): exists only when `presence` is on. */
  | "eventBus";

export interface Grant {
  actions: readonly string[];
  resource: HubResource;
}

/**
 * How API Gateway, SQS or a schedule reaches the handler. `whenPresence`: only deployed (and
 * run by the local hub) when presence is on.
 */
export type Trigger =
  | { kind: "authorizer" }
  /** A WebSocket route; `whenClientMessages`: only deployed when clients may send messages. */
  | { kind: "route"; routeKey: string; whenClientMessages?: boolean; whenPresence?: boolean }
  | { kind: "queue" }
  /** Every `presence.sweepSeconds` (an EventBridge schedule; locally a timer). */
  | { kind: "schedule"; whenPresence: true };

/**
 * The AWS SDK packages the handlers' code requires (core/ and handlers/ import nothing else
 * from npm but each entry's `packages`). They reach every function through the hub's SDK
 * layer (components/lambdaPackages.ts), never from the Lambda runtime's own copy; a test
 * checks this list against every bare import of the compiled handlers.
 */
export const LAYER_PACKAGES: readonly string[] = [
  "@aws-sdk/client-apigatewaymanagementapi",
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/client-sqs",
  "@aws-sdk/client-ssm",
  "@aws-sdk/credential-provider-node",
  "@smithy/signature-v4",
];

export interface HandlerEntry {
  trigger: Trigger;
  /** npm packages its code requires at run time beyond LAYER_PACKAGES: they go in its own zip. */
  packages: readonly string[];
  memoryMb: number;
  /** Seconds; "deliver" follows the component's `queue.deliverTimeoutSeconds`. */
  timeoutSeconds: number | "deliver";
  /** The variables the component sets (core/aws.ts ENV keys); endpoint overrides are optional extras. */
  environment: readonly EnvKey[];
  grants: readonly Grant[];
  /** What it gets on top when presence is on (its hooks in core/presence.ts); nothing when off. */
  presence?: { environment: readonly EnvKey[]; grants: readonly Grant[] };
}

/** API Gateway's WebSocket routes time out at 29 s; ours answer well within 10. */
const ROUTE_TIMEOUT_SECONDS = 10;
const DEFAULT_MEMORY_MB = 256;

/**
 * Every handler that posts to a connection takes its tokens from the hub's budget first: one
 * conditional UpdateItem per block of tokens (core/budget.ts), on the budget table only.
 */
const BUDGET_GRANTS: readonly Grant[] = [{ actions: ["dynamodb:UpdateItem"], resource: "budgetTable" }];
const BUDGET_ENVIRONMENT: readonly EnvKey[] = ["budgetTable", "postsPerSecond"];
/** A post path: the endpoint, its budget and the right to post. */
const POST_ENVIRONMENT: readonly EnvKey[] = ["managementEndpoint", ...BUDGET_ENVIRONMENT];
const POST_GRANTS: readonly Grant[] = [{ actions: ["execute-api:ManageConnections"], resource: "postToConnections" }, ...BUDGET_GRANTS];

/** Posting to a room: read its members, drop the gone ones, post, requeue big rooms (to the bulk queue) and failures. */
const FANOUT_GRANTS: readonly Grant[] = [
  { actions: ["dynamodb:Query"], resource: "roomIndex" },
  // A 410 removes the connection: its row, then its memberships (core/tables.ts removeConnection).
  // DeleteItem only: BatchWriteItem would also let it write rows.
  { actions: ["dynamodb:DeleteItem"], resource: "connectionsTable" },
  ...POST_GRANTS,
  { actions: ["sqs:SendMessage"], resource: "queue" },
  { actions: ["sqs:SendMessage"], resource: "bulkQueue" },
];
/** Room streams: where frames are stored before they are sent, and for how long (0 = off). */
const STREAMS_ENVIRONMENT: readonly EnvKey[] = ["streamsTable", "historyRetentionHours"];
const FANOUT_ENVIRONMENT: readonly EnvKey[] = ["connectionsTable", ...POST_ENVIRONMENT, "queueUrl", "bulkQueueUrl", "largeRoomChunkSize", ...STREAMS_ENVIRONMENT];
/**
 * Store before send (core/streams.ts): claim Put and Update, the counter's Update (and, for a
 * stream without one, the head Query that starts it), frame and tombstone Put, the sweep's
 * Query; GetItem for a redelivery's claim and frame. No DeleteItem: items leave by TTL only.
 */
const STREAM_APPEND_GRANTS: readonly Grant[] = [{ actions: ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resource: "streamsTable" }];

/**
 * Presence changes (core/presence.ts): the member item, the room's counter and diff buffer, a
 * pending leave (UpdateItem, PutItem, GetItem, conditional DeleteItem on the presence table),
 * then the member events to the room: its connections from the room index, posts, a 410's
 * removal (DeleteItem on the connections table, as fan-out).
 */
const PRESENCE_ENVIRONMENT: readonly EnvKey[] = ["presenceTable", "presenceGraceSeconds", "presenceEventMembersLimit", "presenceKeepAliveSeconds", ...POST_ENVIRONMENT, "connectionsTable", "queueUrl"];
const PRESENCE_GRANTS: readonly Grant[] = [
  { actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resource: "presenceTable" },
  { actions: ["dynamodb:Query"], resource: "roomIndex" },
  { actions: ["dynamodb:DeleteItem"], resource: "connectionsTable" },
  ...POST_GRANTS,
  // A big room's diff buffered within its interval: one delayed flush message to deliver (core/presence.ts scheduleFlush).
  { actions: ["sqs:SendMessage"], resource: "queue" },
];
/**
 * Lifecycle events (core/lifecycleEvents.ts): every function that decides one (a connection
 * opened or closed, a member joined or left, a room occupied or vacated) puts it on the hub's
 * bus, and may do nothing else there. The presence and occupancy routes only read: not theirs.
 */
export const LIFECYCLE_ENVIRONMENT: readonly EnvKey[] = ["eventBusName"];
export const LIFECYCLE_GRANTS: readonly Grant[] = [{ actions: ["events:PutEvents"], resource: "eventBus" }];
const PRESENCE_HOOKS = { environment: [...PRESENCE_ENVIRONMENT, ...LIFECYCLE_ENVIRONMENT], grants: [...PRESENCE_GRANTS, ...LIFECYCLE_GRANTS] };

export const HANDLERS = {
  authorizer: {
    trigger: { kind: "authorizer" },
    packages: ["jsonwebtoken", "bcryptjs"],
    memoryMb: 512, // bcrypt is CPU-bound; CPU grows with memory
    // Room for the secret read's retry budget (15 s) in a reconnect storm; API Gateway waits 29 s.
    timeoutSeconds: 20,
    // Containers keep the secret for life; a new version changes the configuration, which
    // replaces every container, so a rotated secret is picked up.
    environment: ["authTable", "jwtSecretParameter", "jwtSecretVersion"],
    grants: [
      { actions: ["dynamodb:GetItem"], resource: "authTable" },
      { actions: ["ssm:GetParameter"], resource: "jwtSecretParameter" },
      { actions: ["kms:Decrypt"], resource: "jwtSecretKey" },
    ],
  },
  connect: {
    trigger: { kind: "route", routeKey: "$connect" },
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: ["connectionsTable", "authTable"],
    // Revocation race: re-read the auth row after writing the connection row, drop the row if revoked.
    grants: [
      // The row and its memberships go in (or, refused, out) as one BatchWriteItem.
      { actions: ["dynamodb:BatchWriteItem"], resource: "connectionsTable" },
      { actions: ["dynamodb:GetItem"], resource: "authTable" },
    ],
  },
  disconnect: {
    trigger: { kind: "route", routeKey: "$disconnect" },
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: ["connectionsTable"],
    // The row (which lists its rooms), then its memberships.
    grants: [{ actions: ["dynamodb:DeleteItem"], resource: "connectionsTable" }],
  },
  default: {
    trigger: { kind: "route", routeKey: "$default" },
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: [...POST_ENVIRONMENT, "allowClientMessages"],
    grants: POST_GRANTS,
  },
  deliver: {
    trigger: { kind: "queue" },
    // A 410 removes the connection; with presence on its rooms lose it (`timed_out`, core/liveness.ts).
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: 512,
    timeoutSeconds: "deliver",
    environment: FANOUT_ENVIRONMENT,
    grants: [
      ...FANOUT_GRANTS,
      ...STREAM_APPEND_GRANTS,
      // What the event source mappings (one per queue) do on the function's behalf.
      { actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], resource: "queue" },
      { actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], resource: "bulkQueue" },
    ],
  },
  sendMessage: {
    trigger: { kind: "route", routeKey: "sendMessage", whenClientMessages: true },
    // A 410 removes the connection; with presence on its rooms lose it (`timed_out`, core/liveness.ts).
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: 512,
    timeoutSeconds: 29, // API Gateway's integration timeout
    environment: FANOUT_ENVIRONMENT,
    grants: [...FANOUT_GRANTS, ...STREAM_APPEND_GRANTS, { actions: ["dynamodb:GetItem"], resource: "connectionsTable" }],
  },
  // Room streams (docs/protocol.md#room-streams): replays a room's stored frames to the asking connection.
  resume: {
    trigger: { kind: "route", routeKey: "resume" },
    // A 410 removes the connection; with presence on its rooms lose it (`timed_out`, core/liveness.ts).
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: 29, // up to 1,000 posts one after another; API Gateway's integration timeout
    environment: ["connectionsTable", ...POST_ENVIRONMENT, ...STREAMS_ENVIRONMENT],
    grants: [
      { actions: ["dynamodb:Query"], resource: "streamsTable" },
      // The connection's rooms (its row), its replay budget on the row (UpdateItem); a 410 removes its row and memberships.
      { actions: ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resource: "connectionsTable" },
      ...POST_GRANTS,
    ],
  },
  // Many rooms per connection (docs/protocol.md#rooms-and-user-channels): grants come from the authorizer's context, so no
  // auth table and no secret; the row's `rooms` and one membership item per room.
  subscribe: {
    trigger: { kind: "route", routeKey: "subscribe" },
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: ["connectionsTable", ...POST_ENVIRONMENT, "maxRoomsPerConnection", ...STREAMS_ENVIRONMENT],
    grants: [
      // UpdateItem ADD rooms, PutItem the membership; GetItem only to tell a refusal's cause (or without context).
      { actions: ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem"], resource: "connectionsTable" },
      // The stream's head: the answer's last_seq.
      { actions: ["dynamodb:Query"], resource: "streamsTable" },
      ...POST_GRANTS,
    ],
  },
  unsubscribe: {
    trigger: { kind: "route", routeKey: "unsubscribe" },
    presence: PRESENCE_HOOKS,
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: ["connectionsTable", ...POST_ENVIRONMENT],
    grants: [{ actions: ["dynamodb:UpdateItem", "dynamodb:DeleteItem"], resource: "connectionsTable" }, ...POST_GRANTS],
  },
  // Presence (docs/protocol.md#presence): one page of a room's members, and its counts.
  presence: {
    trigger: { kind: "route", routeKey: "presence", whenPresence: true },
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: PRESENCE_ENVIRONMENT,
    grants: [
      // The asking connection's rooms (its row); the page (Query) and the room's counter (GetItem).
      { actions: ["dynamodb:GetItem"], resource: "connectionsTable" },
      { actions: ["dynamodb:Query", "dynamodb:GetItem"], resource: "presenceTable" },
      ...POST_GRANTS,
    ],
  },
  occupancy: {
    trigger: { kind: "route", routeKey: "occupancy", whenPresence: true },
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: ROUTE_TIMEOUT_SECONDS,
    environment: PRESENCE_ENVIRONMENT,
    grants: [
      { actions: ["dynamodb:GetItem"], resource: "connectionsTable" },
      { actions: ["dynamodb:GetItem"], resource: "presenceTable" },
      ...POST_GRANTS,
    ],
  },
  // Presence's schedule: removes connections whose $disconnect never came (core/liveness.ts),
  // decides the leaves whose grace is over and sends the diffs still waiting.
  sweep: {
    trigger: { kind: "schedule", whenPresence: true },
    packages: [],
    memoryMb: DEFAULT_MEMORY_MB,
    timeoutSeconds: 50, // within the schedule's minute
    environment: [...PRESENCE_ENVIRONMENT, ...LIFECYCLE_ENVIRONMENT],
    grants: [
      ...PRESENCE_GRANTS,
      { actions: ["dynamodb:Query"], resource: "presenceTable" },
      // Suspects: one parallel Scan of the connections table (the only Scan any role may make);
      // a suspect GET finds alive gets confirmed_at (UpdateItem, conditional on the row).
      { actions: ["dynamodb:Scan", "dynamodb:UpdateItem"], resource: "connectionsTable" },
      // GET confirms a suspect; DELETE closes one that stopped pinging at its told rate (a
      // half-open connection answers GET 200 until API Gateway's idle timeout). No POST.
      { actions: ["execute-api:ManageConnections"], resource: "getConnections" },
      { actions: ["execute-api:ManageConnections"], resource: "deleteConnections" },
      ...LIFECYCLE_GRANTS,
    ],
  },
} as const satisfies Record<string, HandlerEntry>;

export type HandlerName = keyof typeof HANDLERS;

export const HANDLER_NAMES = Object.keys(HANDLERS) as HandlerName[];

/** The entry of one handler, widened to the interface (the table itself keeps its literal types). */
export function handlerEntry(name: HandlerName): HandlerEntry {
  return HANDLERS[name];
}

/** The handlers deployed (and run locally) with these settings: sendMessage only when clients may send, presence's only with presence on. */
export function deployedHandlers(allowClientMessages: boolean, presence = false): HandlerName[] {
  return HANDLER_NAMES.filter((name) => {
    const trigger: Trigger = handlerEntry(name).trigger;
    if (!presence && (trigger.kind === "schedule" || (trigger.kind === "route" && trigger.whenPresence))) return false;
    return allowClientMessages || trigger.kind !== "route" || !trigger.whenClientMessages;
  });
}

/** A handler's environment and grants with these settings: its presence hooks' on top when presence is on. */
export function effectiveEntry(name: HandlerName, presence: boolean): { environment: EnvKey[]; grants: Grant[] } {
  const entry = handlerEntry(name);
  const extra = presence ? entry.presence : undefined;
  // A grant both lists (e.g. the budget's token UpdateItem of every poster) is granted once.
  const grants: Grant[] = [];
  for (const grant of [...entry.grants, ...(extra?.grants ?? [])]) {
    if (!grants.some((g) => g.resource === grant.resource && g.actions.join() === grant.actions.join())) grants.push(grant);
  }
  return { environment: [...new Set([...entry.environment, ...(extra?.environment ?? [])])], grants };
}

/** The WebSocket routes among `names`, route key first. */
export function routesOf(names: readonly HandlerName[]): { routeKey: string; handler: HandlerName }[] {
  return names.flatMap((handler) => {
    const trigger = handlerEntry(handler).trigger;
    return trigger.kind === "route" ? [{ routeKey: trigger.routeKey, handler }] : [];
  });
}
