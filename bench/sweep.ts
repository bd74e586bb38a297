/**
 * Presence's sweep at 10,000 connections (core/liveness.ts, handlers/sweep.ts), measured: what
 * one run reads, asks and removes, and what a run a minute costs a month. Part of
 * `npm run bench -- --only presence` (bench/presence.ts calls `measureSweep`).
 *
 * Real: a local hub with presence on in a process of its own (bench/hubProcess.ts; 10,000
 * server sockets), 10,000 `ws` clients here, one per connection row, in 100 rooms of 100; each
 * room has a healthy user (85 tabs), a ghost user (10) and a late user (5). `$connect` writes
 * every row, its membership and `seen_at`; the ghosts' sockets are closed with `$disconnect`
 * dropped (local/testHooks.ts dropDisconnect: their rows stay, as when API Gateway loses it);
 * the healthy tabs send `{"action":"ping"}` before each run (the ping route's integration
 * writes `seen_at`); the late tabs are open but send nothing. The sweep is the real handler
 * (handlers/sweep.ts createSweepHandler with presenceFrom's deps and livenessSettings at the
 * default `postsPerSecond`, 5,000: 500 GETs a second, 15,000 a run), run here so that its
 * requests can be counted: its DynamoDB requests go through bench/cost.ts's capacity proxy
 * (ReturnConsumedCapacity TOTAL on each, dynalite's answer added up by table and operation),
 * its GETs and lifecycle events are counted by wrapping its deps. The hub's own sweep timer is
 * set to an hour so that it never runs during the measurement.
 *
 * The default keep-alive (45 s: stale after 60 s). The healthy tabs' pings before each run are
 * spread over 20 s (sent all at once, 8,500 of them time out the hub's writes to dynalite and
 * the healthy become suspects). Not as on AWS: handler time is local (dynalite, a loaded 2-core
 * machine, the GETs paced at 500 a second), an upper bound on billed duration; dynalite ends a
 * Scan page at 1 MB of a smaller measure of the items than DynamoDB's (4 pages at 10,000
 * connections; DynamoDB: about 2 per segment), which moves no read unit.
 *
 * Three runs: (1) 1,000 ghosts and 500 late tabs stale; (2) after the healthy tabs' next pings, nothing stale (the
 * steady state: the Scan alone); (3) the late tabs stale again (alive suspects each run, as a
 * throttled hidden tab may be).
 *
 *   node -r ts-node/register/transpile-only bench/sweep.ts [--quick] [--json]
 */
import { parseArgs } from "util";
import { createLogger } from "../core/log";
import { mapWithConcurrency } from "../core/fanout";
import { presenceFrom } from "../handlers/dependencies";
import { handlerEntry } from "../handlers/manifest";
import { createSweepHandler } from "../handlers/sweep";
import { livenessSettings, CONFIRM_SECONDS_PER_RUN, staleAfterMs } from "../core/liveness";
import { DEFAULT_POSTS_PER_SECOND } from "../core/hubOptions";
import { PRESENCE_DEFAULTS } from "../core/presence";
import { localEnvironment } from "../local/handlers";
import { openClient, type WsClient } from "../test/support/wsClient";
import { startCapacityProxy } from "./cost";
import { dollarsFor, gbSeconds, ZERO_COUNTS, type BilledCounts } from "./costModel";
import { note, progress, startHubProcess } from "./lib";
import { PRICES } from "./prices";

/** The default keep-alive (stale after 60 s). */
const KEEP_ALIVE_MS = PRESENCE_DEFAULTS.keepAliveSeconds * 1000;
/** The healthy tabs' pings before a run are spread over this long (8,500 at once time out the ping route's writes to dynalite). */
const PING_SPREAD_MS = 20_000;
const RUNS_PER_MONTH = 43_200;
/** Per room: tabs of the healthy, ghost and late user. */
const TABS = { healthy: 85, ghost: 10, late: 5 } as const;

export interface SweepRun {
  label: string;
  /** Items the Scan read (rows and memberships), pages (Scan requests, 4 segments), read units. */
  scanned: number;
  pages: number;
  scanReadUnits: number;
  suspects: number;
  gets: number;
  /** `@connections` posts: the leaves' member events to the rooms' other members. */
  posts: number;
  alive: number;
  gone: number;
  removed: number;
  deferred: number;
  /** Leaves settled from the pending list (a ghost's leave is decided at once: its grace counts from its seen_at), lifecycle events put (connection.closed, member.left). */
  left: number;
  lifecycleEvents: number;
  /** Every other read and write unit of the run, by table (removals, leaves, the budget's tokens, alive touches). */
  readUnits: Record<string, number>;
  writeUnits: Record<string, number>;
  handlerMs: number;
}

export interface SweepFigures {
  connections: number;
  rooms: number;
  ghosts: number;
  late: number;
  keepAliveMs: number;
  postsPerSecond: number;
  confirmsPerSecond: number;
  confirmsPerRun: number;
  runs: SweepRun[];
  /** Runs the ghosts and late tabs of run 1 took to clear (deferred suspects wait for the next). */
  runsToClear: number;
  /** Share of postsPerSecond the GETs took while run 1 asked, and averaged over its minute. */
  budgetShare: { whileAsking: number; perMinute: number };
  /** Dollars per 10,000 connections per month at one run a minute. */
  monthly: { steady: number; withLateEveryRun: number; lateShare: number; perThousandGhosts: number };
  /** The Scan's read units per run at 100,000 connections (linear in the table). */
  scanReadUnitsPer100k: number;
  runSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);

export async function measureSweep(quick: boolean): Promise<SweepFigures> {
  const started = Date.now();
  const rooms = quick ? 10 : 100;
  const connections = rooms * (TABS.healthy + TABS.ghost + TABS.late);
  console.error(`\n[presence] the sweep at ${connections.toLocaleString("en-US")} connections (${rooms} rooms; ${rooms * TABS.ghost} ghosts, ${rooms * TABS.late} late)`);
  const hubProcess = await startHubProcess({
    mode: "ours",
    workers: 1,
    bulkWorkers: 1,
    bcryptCost: 4,
    account: { newConnectionsPerSecond: 10_000 },
    presence: { enabled: true, graceSeconds: 5, sweepSeconds: 3600, keepAliveSeconds: KEEP_ALIVE_MS / 1000 },
    dropDisconnectOfUsers: "-ghost",
  });
  const hub = hubProcess.info;
  const capacity = await startCapacityProxy(hub.dynamodbEndpoint);
  const clients: Record<keyof typeof TABS, WsClient[]> = { healthy: [], ghost: [], late: [] };
  try {
    // Connect: one token per (room, kind), its tabs share it.
    const plan = Array.from({ length: rooms }, (_, r) => (Object.keys(TABS) as (keyof typeof TABS)[]).map((kind) => ({ room: `sweep-${r}`, kind, user: `sweep-${r}-${kind}` }))).flat();
    const tokens = await mapWithConcurrency(plan, 4, (p) => hubProcess.notifier.issueToken({ userId: p.user, roomId: p.room, ttlSeconds: 3 * 3600 }));
    const tabs = plan.flatMap((p, i) => Array.from({ length: TABS[p.kind] }, () => ({ kind: p.kind, token: tokens[i] })));
    let opened = 0;
    await mapWithConcurrency(tabs, 32, async ({ kind, token }) => {
      const client = await openClient(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false, keepFrames: false });
      clients[kind].push(client);
      progress(`connecting ${connections.toLocaleString("en-US")}`, ++opened, connections);
    });
    const lastConnect = Date.now();
    // Ghosts: their sockets close, their $disconnect is dropped; their rows stay.
    for (const c of clients.ghost) c.ws.close();
    await Promise.all(clients.ghost.map((c) => c.closed));

    const env = localEnvironment({
      dynamodbEndpoint: capacity.endpoint,
      sqsEndpoint: hub.sqsEndpoint,
      managementEndpoint: hub.managementEndpoint,
      queueUrl: hub.queueUrl,
      budget: { table: hub.budgetTableName, postsPerSecond: DEFAULT_POSTS_PER_SECOND },
      connectionsTable: hub.connectionsTableName,
      authTable: hub.authTableName,
      jwtSecret: hub.jwtSecret,
      allowClientMessages: true,
      presence: { presenceTable: hub.presenceTableName!, graceSeconds: 5, sweepSeconds: 60, eventMembersLimit: 100, keepAliveSeconds: KEEP_ALIVE_MS / 1000 },
      ...(hub.eventBusName && hub.eventsEndpoint ? { events: { eventBusName: hub.eventBusName, endpoint: hub.eventsEndpoint } } : {}),
    });
    const deps = presenceFrom({ env, credentials: hub.credentials, log: createLogger({}, () => undefined, "error") })!;
    // Counted: every GET and its status, every post (member events), every lifecycle event put.
    const statuses: number[] = [];
    let posts = 0;
    const get = deps.management.get!;
    const post = deps.management.post;
    deps.management.get = async (id, options) => {
      const response = await get.call(deps.management, id, options);
      statuses.push(response.status);
      return response;
    };
    deps.management.post = (id, frame, options) => {
      posts++;
      return post.call(deps.management, id, frame, options);
    };
    let events = 0;
    const emit = deps.emit;
    if (emit)
      deps.emit = (list) => {
        events += list.length;
        return emit(list);
      };
    const settings = livenessSettings(KEEP_ALIVE_MS, DEFAULT_POSTS_PER_SECOND);
    const sweep = createSweepHandler(deps, settings);
    const tables: Record<string, string> = { [hub.connectionsTableName]: "connections", [hub.presenceTableName!]: "presence", [hub.budgetTableName]: "budget", [hub.authTableName]: "auth" };

    /**
     * The healthy tabs ping (the route's integration writes seen_at), spread over PING_SPREAD_MS
     * and ending 2 s before `at` (the hub's writes land); returns at `at`, or after the pings if later.
     */
    const pingBefore = async (at: number) => {
      await sleep(at - PING_SPREAD_MS - 2_000 - Date.now());
      const gapMs = PING_SPREAD_MS / clients.healthy.length;
      const from = Date.now();
      for (const [i, c] of clients.healthy.entries()) {
        c.ws.send(JSON.stringify({ action: "ping" }));
        const wait = from + (i + 1) * gapMs - Date.now();
        if (wait >= 1) await sleep(wait);
      }
      await sleep(Math.max(2_000, at - Date.now()));
    };
    const run = async (label: string): Promise<SweepRun> => {
      const marks = { units: capacity.units.length, gets: statuses.length, posts, events };
      const t0 = process.hrtime.bigint();
      const result = await sweep();
      const handlerMs = Number(process.hrtime.bigint() - t0) / 1e6;
      await sleep(500); // the lifecycle events' puts settle
      const units = capacity.units.slice(marks.units);
      const scan = units.filter((u) => u.operation === "Scan");
      const readUnits: Record<string, number> = {};
      const writeUnits: Record<string, number> = {};
      for (const u of units) {
        if (u.operation === "Scan") continue;
        const name = tables[u.table] ?? u.table;
        if (u.read) readUnits[name] = (readUnits[name] ?? 0) + u.read;
        if (u.write) writeUnits[name] = (writeUnits[name] ?? 0) + u.write;
      }
      const got = statuses.slice(marks.gets);
      const figures: SweepRun = {
        label,
        scanned: result.scanned,
        pages: scan.length,
        scanReadUnits: scan.reduce((n, u) => n + u.read, 0),
        suspects: result.suspects,
        gets: got.length,
        posts: posts - marks.posts,
        alive: result.alive,
        gone: got.filter((s) => s === 410).length,
        removed: result.removed,
        deferred: result.deferred,
        left: result.left,
        lifecycleEvents: events - marks.events,
        readUnits,
        writeUnits,
        handlerMs: Math.round(handlerMs),
      };
      note(
        `${label}: scanned ${figures.scanned} items in ${figures.pages} pages (${figures.scanReadUnits} RRU); ${figures.suspects} suspects, ${figures.gets} GETs (${figures.alive} alive, ${figures.gone} gone), ${figures.posts} posts, ` +
          `${figures.removed} removed, ${figures.deferred} deferred, ${figures.left} leaves, ${figures.lifecycleEvents} events; other units R ${JSON.stringify(readUnits)} W ${JSON.stringify(writeUnits)}; ${figures.handlerMs} ms`,
      );
      return figures;
    };

    // Run 1: ghosts and late tabs past the stale line, the healthy just pinged.
    await pingBefore(lastConnect + staleAfterMs(KEEP_ALIVE_MS) + 1_000);
    const first = await run("run 1 (ghosts and late tabs stale)");
    const firstAt = Date.now();
    let runsToClear = 1;
    const runs = [first];
    for (let extra = first.deferred; extra > 0; runsToClear++) {
      await pingBefore(Date.now());
      const more = await run(`run ${runsToClear + 1} (deferred suspects)`);
      runs.push(more);
      extra = more.deferred;
    }
    await pingBefore(Date.now());
    runs.push(await run("steady (nothing stale)"));
    // The late tabs, touched by run 1's GETs, go stale again.
    await pingBefore(firstAt + staleAfterMs(KEEP_ALIVE_MS) + 1_000);
    const lateAgain = await run("late tabs stale again (alive suspects)");
    runs.push(lateAgain);
    const steady = runs[runs.length - 2];

    // A month at one run a minute, per 10,000 connections.
    const memoryMb = handlerEntry("sweep").memoryMb;
    const perRun = (r: SweepRun): BilledCounts => ({
      ...ZERO_COUNTS,
      lambdaInvocations: 1,
      lambdaGbSeconds: gbSeconds(r.handlerMs, memoryMb),
      dynamodbReadUnits: r.scanReadUnits + sum(r.readUnits),
      dynamodbWriteUnits: sum(r.writeUnits),
      // A GET billed as a message (the upper bound: API Gateway's page prices messages, not management calls).
      apiGatewayMessages: r.gets + r.posts,
    });
    // Per 10,000 connections in the table (the ghosts are gone by the runs priced).
    const scale = 10_000 / (connections - first.removed);
    const monthOf = (r: SweepRun) => (dollarsFor(perRun(r), PRICES).total + (r.lifecycleEvents * PRICES.eventBridge.perMillionCustomEvents) / 1e6) * RUNS_PER_MONTH * scale;
    // What the ghosts added to run 1: its units, GETs and events less the late tabs' (the last run asks those alone); Lambda time left out.
    const beyondScan = (r: SweepRun) => dollarsFor({ ...perRun(r), lambdaInvocations: 0, lambdaGbSeconds: 0, dynamodbReadUnits: sum(r.readUnits) }, PRICES).total + (r.lifecycleEvents * PRICES.eventBridge.perMillionCustomEvents) / 1e6;
    const ghostCost = beyondScan(first) - beyondScan(lateAgain);
    const askingSeconds = Math.max(first.gets / settings.confirmsPerSecond, 1);
    const figures: SweepFigures = {
      connections,
      rooms,
      ghosts: rooms * TABS.ghost,
      late: rooms * TABS.late,
      keepAliveMs: KEEP_ALIVE_MS,
      postsPerSecond: DEFAULT_POSTS_PER_SECOND,
      confirmsPerSecond: settings.confirmsPerSecond,
      confirmsPerRun: settings.confirmsPerSecond * CONFIRM_SECONDS_PER_RUN,
      runs,
      runsToClear,
      budgetShare: { whileAsking: Number((first.gets / askingSeconds / DEFAULT_POSTS_PER_SECOND).toFixed(3)), perMinute: Number((first.gets / 60 / DEFAULT_POSTS_PER_SECOND).toFixed(4)) },
      monthly: {
        steady: Number(monthOf(steady).toFixed(3)),
        withLateEveryRun: Number(monthOf(lateAgain).toFixed(3)),
        lateShare: TABS.late / (TABS.healthy + TABS.ghost + TABS.late),
        perThousandGhosts: Number(((ghostCost * 1_000) / first.removed).toFixed(4)),
      },
      scanReadUnitsPer100k: Math.round(steady.scanReadUnits * (100_000 / (connections - first.removed))),
      runSeconds: Math.round((Date.now() - started) / 1000),
    };
    note(
      `sweep per 10,000 connections a month at 1 run/min: $${figures.monthly.steady} (nothing stale), $${figures.monthly.withLateEveryRun} with ${figures.late} late tabs asked every run; ` +
        `$${figures.monthly.perThousandGhosts} per 1,000 ghosts removed; GETs ${(figures.budgetShare.whileAsking * 100).toFixed(1)} % of the budget while asking; the sweep's part took ${figures.runSeconds} s`,
    );
    return figures;
  } finally {
    await capacity.stop();
    // Killed first: closing 9,000 sockets while it runs would run 9,000 $disconnects (bench/presence.ts stopQuietly).
    await hubProcess.stop({ kill: true });
    for (const c of [...clients.healthy, ...clients.late]) c.ws.terminate();
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
  measureSweep(values.quick ?? false).then(
    (figures) => {
      process.stdout.write((values.json ? JSON.stringify(figures) : JSON.stringify(figures, null, 2)) + "\n");
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
