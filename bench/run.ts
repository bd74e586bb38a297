/**
 * `npm run bench`: the hub against the seed article's design, on the local hub, same machine,
 * same run. Prints a table and writes bench/results.local.json and bench/chart.local.svg
 * (git-ignored); with --update-docs, bench/results.json, bench/chart.svg and the figures in
 * BENCHMARKS.md instead (bench/outputs.ts).
 *
 *   npm run bench                          all scenarios, full size
 *   npm run bench -- --quick               all scenarios, small (a minute or two)
 *   npm run bench -- --only fanout,connect one or more of: fanout, large, artifacts, connect, load, post-cost, post-cost-layout, resume, rooms, contention, budget, publish, cost, presence
 *   npm run bench -- --only post-cost --json   one JSON line on stdout (hub_us_per_post, sdk_us_per_post, floor_us_per_post, ...)
 *   npm run bench -- --update-docs         also refresh the tracked results, chart and BENCHMARKS.md
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { mapWithConcurrency } from "../core/fanout";
import { handshakeStatus, openClient } from "../test/support/wsClient";
import { artifactsScenario } from "./artifacts";
import { renderChart } from "./chart";
import { postCostScenario } from "./postCost";
import { postCostLayoutScenario } from "./postCostLayout";
import type { RoomsFigures } from "./rooms";
import type { ContentionFigures } from "./contention";
import { benchOutputs } from "./outputs";
import type { BudgetFigures } from "./budget";
import type { PublishFigures } from "./publish";
import type { CostFigures } from "./cost";
import type { PresenceFigures } from "./presence";
import { updateBenchmarksMd } from "./report";
import { ClientPool, median, note, percentile, startHubProcess, type HubProcess } from "./lib";

const ROOT = path.resolve(__dirname, "..");
const SCENARIOS = ["fanout", "large", "artifacts", "connect", "load", "post-cost", "post-cost-layout", "resume", "rooms", "contention", "budget", "publish", "cost", "presence"] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({ options: { quick: { type: "boolean" }, only: { type: "string" }, json: { type: "boolean" }, "update-docs": { type: "boolean" }, help: { type: "boolean", short: "h" } }, strict: true });
if (values.help) {
  process.stdout.write(fs.readFileSync(__filename, "utf8").split("*/")[0].replace(/^\/\*\*?/, "").replace(/^ \* ?/gm, "") + "\n");
  process.exit(0);
}
const only = new Set((values.only ?? SCENARIOS.join(",")).split(",").map((s) => s.trim()));
for (const name of only) {
  if (!SCENARIOS.includes(name as Scenario)) {
    console.error(`bench: unknown scenario "${name}" (scenarios: ${SCENARIOS.join(", ")})`);
    process.exit(2);
  }
}
const quick = values.quick ?? false;
const json = values.json ?? false;
const outputs = benchOutputs({ quick, updateDocs: values["update-docs"] ?? false });
/** With --json, stdout carries only the JSON line; everything else goes to stderr. */
const out = (text: string) => (json ? process.stderr : process.stdout).write(text);
const SIZE = quick
  ? { table: 2_000, fanoutRoom: 100, fanoutMessages: 3, chart: [25, 50, 100, 200], large: 1_000, largeChunk: 100, connect: 10, loadClients: 200, loadMessages: 20, posts: 2_000 }
  : { table: 20_000, fanoutRoom: 1_000, fanoutMessages: 5, chart: [100, 250, 500, 1_000, 2_000, 4_000], large: 10_000, largeChunk: 1_000, connect: 50, loadClients: 1_000, loadMessages: 100, posts: 20_000 };

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
};
const table: string[][] = [["scenario", "figure", "ours", "seed baseline"]];
const row = (...cells: (string | number)[]) => table.push(cells.map(String));
const ms = (value: number) => (Number.isFinite(value) ? `${Math.round(value)} ms` : "n/a");

/** One notification to a pool: time from SendMessage to the last client's receipt, and the hub's read figures. */
async function measure(hub: HubProcess, pool: ClientPool, roomId: string, timeoutMs = 120_000) {
  const { messageId, sentAt } = await hub.publish(roomId, { type: "bench", data: { sentAt: Date.now() } });
  const { received, lastAt } = await pool.waitFor(messageId, timeoutMs);
  // The deliver summary may trail the last post by a moment.
  const deadline = Date.now() + 5_000;
  while (!hub.metrics.some((m) => m.id === messageId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const metrics = hub.metrics.filter((m) => m.id === messageId);
  return {
    ms: lastAt - sentAt,
    lost: pool.sockets.length - received,
    itemsRead: metrics.reduce((sum, m) => sum + (m.items_read ?? 0), 0),
    capacityUnits: metrics.reduce((sum, m) => sum + (m.capacity_units ?? 0), 0),
    invocations: metrics.length,
  };
}

type DeliveryRun = { fanout?: Awaited<ReturnType<typeof measure>>[]; chart?: { size: number; ms: number; lost: number }[]; large?: Awaited<ReturnType<typeof measure>> };

/** Scenarios 1 and 2 and the chart, for one design: a table of background rows, then rooms of real clients. */
async function deliveryScenarios(mode: "ours" | "seed"): Promise<DeliveryRun> {
  const out: DeliveryRun = {};
  console.error(`\n[${mode}] delivery scenarios`);
  const hub = await startHubProcess({ mode, largeRoomChunkSize: SIZE.largeChunk });
  try {
    if (only.has("fanout")) {
      await hub.seedRows(SIZE.table - SIZE.fanoutRoom, 1_000);
      const pool = await ClientPool.connect(hub, "fanout", SIZE.fanoutRoom);
      out.fanout = [];
      for (let i = 0; i < SIZE.fanoutMessages; i++) out.fanout.push(await measure(hub, pool, "fanout"));
      note(`fanout: ${out.fanout.map((r) => `${r.ms} ms`).join(", ")}; items read ${out.fanout[0].itemsRead}; lost ${out.fanout.reduce((s, r) => s + r.lost, 0)}`);
      await pool.close();

      out.chart = [];
      for (const size of SIZE.chart) {
        const room = `chart-${size}`;
        const sizedPool = await ClientPool.connect(hub, room, size, { label: `connecting ${size} clients` });
        const runs = [];
        for (let i = 0; i < 3; i++) runs.push(await measure(hub, sizedPool, room));
        out.chart.push({ size, ms: median(runs.map((r) => r.ms)), lost: runs.reduce((s, r) => s + r.lost, 0) });
        note(`room of ${size}: ${median(runs.map((r) => r.ms))} ms (median of 3)`);
        await sizedPool.close();
      }
    }
    if (only.has("large")) {
      const pool = await ClientPool.connect(hub, "large", SIZE.large, { label: `connecting ${SIZE.large} clients` });
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await measure(hub, pool, "large", 180_000));
      out.large = runs.sort((a, b) => a.ms - b.ms)[1];
      out.large.lost = runs.reduce((s, r) => s + r.lost, 0);
      note(`large room: ${runs.map((r) => `${r.ms} ms`).join(", ")}; ${out.large.invocations} deliver invocation(s)`);
      await pool.close();
    }
  } finally {
    await hub.stop();
  }
  return out;
}

async function connectScenario() {
  console.error("\n[connect] handshake latency, cold and warm authorizer");
  const hub = await startHubProcess({ mode: "ours" });
  try {
    const tokens = await mapWithConcurrency(Array.from({ length: SIZE.connect }, (_, i) => i), 4, (i) => hub.notifier.issueToken({ userId: `connect-${i}`, roomId: "connect" }));
    const handshake = async (token: string) => {
      const started = process.hrtime.bigint();
      const client = await openClient(`${hub.info.websocketUrl}?token=${token}`);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      client.ws.close();
      return ms;
    };
    // Cold: each token is new to the authorizer, so it pays bcrypt (as a fresh Lambda would).
    const cold: number[] = [];
    for (const token of tokens) cold.push(await handshake(token));
    // Warm: the same tokens again; the stored hash is still read, bcrypt is not paid again.
    const warm: number[] = [];
    for (const token of tokens) warm.push(await handshake(token));
    // Revocation stays immediate with a warm cache.
    await hub.notifier.revokeToken({ userId: "connect-0", roomId: "connect" });
    const refused = await handshakeStatus(`${hub.info.websocketUrl}?token=${tokens[0]}`);
    const figures = {
      coldP50: percentile(cold, 50),
      coldP99: percentile(cold, 99),
      warmP50: percentile(warm, 50),
      warmP99: percentile(warm, 99),
      revokedAfterWarmStatus: refused,
    };
    note(`cold p50 ${figures.coldP50.toFixed(1)} ms, warm p50 ${figures.warmP50.toFixed(1)} ms; revoked token after warm-up → ${refused}`);
    return figures;
  } finally {
    await hub.stop();
  }
}

async function loadScenario() {
  console.error(`\n[load] ${SIZE.loadClients} clients, ${SIZE.loadMessages} notifications`);
  const hub = await startHubProcess({ mode: "ours" });
  try {
    const pool = await ClientPool.connect(hub, "load", SIZE.loadClients);
    const started = Date.now();
    const sent = await mapWithConcurrency(Array.from({ length: SIZE.loadMessages }, (_, i) => i), 10, () => hub.publish("load", { type: "load", data: "x".repeat(200) }));
    const deadline = Date.now() + 120_000;
    const expected = SIZE.loadClients * SIZE.loadMessages;
    const total = () => sent.reduce((sum, s) => sum + pool.received(s.messageId), 0);
    while (total() < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const latencies: number[] = [];
    let last = 0;
    for (const { messageId, sentAt } of sent) {
      for (const at of pool.receipts.get(messageId) ?? []) {
        latencies.push(at - sentAt);
        last = Math.max(last, at);
      }
    }
    const seconds = (last - started) / 1000;
    const figures = {
      clients: SIZE.loadClients,
      notifications: SIZE.loadMessages,
      deliveries: latencies.length,
      lost: expected - latencies.length,
      duplicates: pool.duplicates,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      notificationsPerSecond: SIZE.loadMessages / seconds,
      deliveriesPerSecond: latencies.length / seconds,
    };
    note(`lost ${figures.lost}, p50 ${figures.p50} ms, p99 ${figures.p99} ms, ${figures.deliveriesPerSecond.toFixed(0)} deliveries/s`);
    await pool.close();
    return figures;
  } finally {
    await hub.stop();
  }
}

/** Runs a scenario that has a script of its own (bench/<file>, its own hub) and reads its last line: the figures as JSON. */
function scenarioScript<T>(file: string, quickRun: boolean): T {
  const output = childProcess.execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(__dirname, file), "--json", ...(quickRun ? ["--quick"] : [])], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(output.trim().split("\n").at(-1)!) as T;
}

async function main() {
  console.error(`notification-hub benchmarks${quick ? " (quick)" : ""}: ${[...only].join(", ")}`);
  if (only.has("fanout") || only.has("large")) {
    const ours = await deliveryScenarios("ours");
    const seed = await deliveryScenarios("seed");
    if (ours.fanout && seed.fanout && ours.chart && seed.chart) {
      const figure = (runs: NonNullable<DeliveryRun["fanout"]>) => ({
        itemsReadPerMessage: median(runs.map((r) => r.itemsRead)),
        capacityUnitsPerMessage: median(runs.map((r) => r.capacityUnits)),
        deliveryMs: median(runs.map((r) => r.ms)),
        lost: runs.reduce((s, r) => s + r.lost, 0),
      });
      const fanout = { room: SIZE.fanoutRoom, table: SIZE.table, ours: figure(ours.fanout), seed: figure(seed.fanout) };
      results.fanout = fanout;
      row(`1 fan-out (${SIZE.fanoutRoom} of ${SIZE.table})`, "items read / message", fanout.ours.itemsReadPerMessage, fanout.seed.itemsReadPerMessage);
      row("", "read capacity / message", fanout.ours.capacityUnitsPerMessage.toFixed(1), fanout.seed.capacityUnitsPerMessage.toFixed(1));
      row("", "SendMessage → last receipt (median)", ms(fanout.ours.deliveryMs), ms(fanout.seed.deliveryMs));
      row("", "lost", fanout.ours.lost, fanout.seed.lost);
      results.chart = { sizes: SIZE.chart, ours: ours.chart, seed: seed.chart, table: SIZE.table };
      if (!quick) fs.writeFileSync(outputs.chart, renderChart(SIZE.chart, ours.chart, seed.chart, SIZE.table));
    }
    if (ours.large && seed.large) {
      results.large = { room: SIZE.large, chunk: SIZE.largeChunk, ours: ours.large, seed: seed.large };
      row(`2 large room (${SIZE.large})`, "SendMessage → last receipt", ms(ours.large.ms), ms(seed.large.ms));
      row("", "deliver invocations", ours.large.invocations, seed.large.invocations);
      row("", "lost", ours.large.lost, seed.large.lost);
    }
  }
  if (only.has("artifacts")) {
    const figures = await artifactsScenario();
    const { rows: artifacts, deliverVsBaseline } = figures;
    results.artifacts = artifacts;
    results.artifactsPackaging = { beforeCommit: figures.beforeCommit, layerZipKiB: figures.layerZipKiB, layerFiles: figures.layerFiles, layerPackages: figures.layerPackages, node: figures.node };
    for (const a of artifacts) {
      row(`3 artifact ${a.function}`, "zip / cold load (Lambda layout)", `${a.zipKiB} KiB / ${a.requireMs} ms`, `${a.before.zipKiB} KiB / ${a.before.requireMs} ms flat; on Lambda: ${a.before.onLambda.slice(0, 40)}`);
    }
    row("3 SDK layer", "zip (one per hub)", `${figures.layerZipKiB} KiB`, "");
    if (deliverVsBaseline) {
      const d = deliverVsBaseline;
      results.deliverVsBaseline = d;
      row(`3 deliver vs ${d.commit}`, "zip (ratio)", `${d.zipKiB} KiB (${d.zipRatio}×)`, `${d.baselineZipKiB} KiB (as built then ${d.baselineZipKiBAsBuilt})`);
      row("", "cold require, alternated (ratio)", `${d.requireMs} ms (${d.requireRatio}×)`, `${d.baselineRequireMs} ms`);
      row("", "zip if minified (ratio)", `${d.minifiedZipKiB} KiB (${d.minifiedZipRatio}×)`, "");
    }
  }
  if (only.has("connect")) {
    const connect = await connectScenario();
    results.connect = connect;
    row("4 connect", "handshake p50 cold / warm", `${connect.coldP50.toFixed(1)} / ${connect.warmP50.toFixed(1)} ms`, "");
    row("", "handshake p99 cold / warm", `${connect.coldP99.toFixed(1)} / ${connect.warmP99.toFixed(1)} ms`, "");
    row("", "revoked token, warm cache", `HTTP ${connect.revokedAfterWarmStatus}`, "");
  }
  if (only.has("load")) {
    const load = await loadScenario();
    results.load = load;
    row(`5 load (${load.clients} clients, ${load.notifications} notifications)`, "lost / duplicates", `${load.lost} / ${load.duplicates}`, "");
    row("", "delivery latency p50 / p99", `${load.p50} / ${load.p99} ms`, "");
    row("", "notifications/s (deliveries/s)", `${load.notificationsPerSecond.toFixed(1)} (${load.deliveriesPerSecond.toFixed(0)})`, "");
  }

  if (only.has("post-cost")) {
    console.error(`\n[post-cost] client CPU per @connections post, ${SIZE.posts.toLocaleString("en-US")} posts per path and round`);
    const cost = await postCostScenario(SIZE.posts, quick ? 3 : 5);
    results.postCost = cost;
    row("6 post cost (client CPU per post)", "hub path / unsigned floor", `${cost.hub_us_per_post} / ${cost.floor_us_per_post} µs (${cost.hub_vs_floor.toFixed(2)}×)`, "");
    row("", "SDK client as fan-out used it / same loop as hub", "", `${cost.sdk_us_per_post} / ${cost.sdk_same_loop_us_per_post} µs`);
    row("", "hub vs SDK (as used / same loop)", `${cost.hub_vs_sdk.toFixed(3)} / ${cost.hub_vs_sdk_same_loop.toFixed(3)}`, "");
  }

  if (only.has("post-cost-layout")) {
    const posts = Math.min(SIZE.posts, 5_000);
    console.error(`\n[post-cost-layout] the hub path's CPU per post with the SDK from this checkout vs from the SDK layer, ${posts.toLocaleString("en-US")} posts per round, fresh process per round`);
    const layout = postCostLayoutScenario(posts, quick ? 3 : 5);
    results.postCostLayout = layout;
    for (const [name, figures] of Object.entries(layout.layouts)) row(name === "flat" ? "6b post cost by SDK location" : "", `${name} (${figures.node}): µs / vs unsigned`, `${figures.hub_us_per_post} / ${figures.hub_vs_floor}×`, "");
    row("", "layer / flat (same Node)", `${layout.layer_vs_flat}×`, "");
  }

  if (only.has("resume")) {
    // Room streams (bench/resume.ts, its own hub): resume latency and the cost of a stored publish.
    console.error(`\n[resume] resume -> hub.resumed for 100 and 1,000 missed; stream writes per publish`);
    const streams = scenarioScript<{ resume_ms: unknown; burst: { per_publish_on_ms: number; per_publish_off_ms: number } }>("resume.ts", quick);
    results.resume = streams;
    row("7 resume (room streams)", "resume -> hub.resumed (ms)", JSON.stringify(streams.resume_ms), "");
    row("", "local time per publish, streams on / off", `${streams.burst.per_publish_on_ms.toFixed(1)} / ${streams.burst.per_publish_off_ms.toFixed(1)} ms`, "");
  }

  if (only.has("rooms")) {
    // Many rooms per connection (bench/rooms.ts, its own hub): subscribe round trip, 20-room vs one-room delivery.
    console.error(`\n[rooms] subscribe round trip; delivery to connections in 20 rooms each vs one-room connections`);
    const rooms = scenarioScript<RoomsFigures>("rooms.ts", quick);
    results.rooms = rooms;
    const { subscribe, delivery } = rooms;
    row("8 rooms per connection", "subscribe round trip p50 / p99, in series", `${subscribe.sequential.p50.toFixed(1)} / ${subscribe.sequential.p99.toFixed(1)} ms`, "");
    row("", `same, ${subscribe.concurrent.connections} connections at once`, `${subscribe.concurrent.p50.toFixed(1)} / ${subscribe.concurrent.p99.toFixed(1)} ms`, "");
    row("", `${delivery.members} in ${delivery.roomsEach} rooms each vs one room: last receipt`, `${delivery.manyRooms.ms} ms`, `${delivery.oneRoom.ms} ms (one-room)`);
    row("", "items read per message", delivery.manyRooms.itemsRead, `${delivery.oneRoom.itemsRead} (one-room)`);
  }

  if (only.has("contention")) {
    // A busy room (bench/contention.ts, its own dynalite per design): today's seq assignment against 914c516's head + 1.
    console.error(`\n[contention] 6 members x 20 messages at once into one room, today's design and the one before the seq counter`);
    const contention = scenarioScript<ContentionFigures>("contention.ts", false);
    results.contention = contention;
    const { ours, before } = contention;
    const label = `9 contention (${contention.writers} writers x ${contention.each})`;
    row(label, "all answered after", ms(ours.clearMs), before ? ms(before.clearMs) : "n/a");
    row("", "stored / refused / lost", `${ours.stored} / ${ours.refused} / ${ours.lost}`, before ? `${before.stored} / ${before.refused} / ${before.lost}` : "n/a");
    row("", "DynamoDB requests per message (streams table)", `${ours.requestsPerMessage} (${ours.streamsRequestsPerMessage})`, before ? `${before.requestsPerMessage} (${before.streamsRequestsPerMessage})` : "n/a");
  }

  if (only.has("budget")) {
    // The @connections budget and the small-message lane (bench/budget.ts, its own hubs): a big broadcast under 1,000 posts/s, small notifications during it.
    console.error(`\n[budget] a broadcast under a budget of 1,000 posts/s, with and without the bulk queue`);
    const budget = scenarioScript<BudgetFigures>("budget.ts", quick);
    results.budget = budget;
    const { lanes, oneQueue } = budget;
    row(`10 budget (${lanes.room} at ${budget.postsPerSecond}/s)`, "lost / dead letters / 429s", `${lanes.lost} / ${lanes.deadLetters} / ${lanes.throttled}`, `${oneQueue.lost} / ${oneQueue.deadLetters} / ${oneQueue.throttled} (one queue)`);
    row("", "broadcast: SendMessage → last receipt", `${lanes.broadcastMs} ms`, `${oneQueue.broadcastMs} ms (one queue)`);
    row("", `${lanes.small.n} small notifications p50 / p99`, `${lanes.small.p50} / ${lanes.small.p99} ms`, `${oneQueue.small.p50} / ${oneQueue.small.p99} ms (one queue; ${budget.ratio.p50}× / ${budget.ratio.p99}×)`);
  }


  if (only.has("publish")) {
    // Publishing (bench/publish.ts, its own hub): what an idempotency key costs, and one 100-room publish against 100 single publishes.
    console.error(`\n[publish] requests per publish with and without an idempotency key; one publish to 100 rooms vs 100 publishes`);
    const publish = scenarioScript<PublishFigures>("publish.ts", quick);
    results.publish = publish;
    const on = publish.keyCost.streamsOn;
    const off = publish.keyCost.streamsOff;
    row("11 publishing", "streams-table requests / publish: no key, key, retry (streams on)", `${on.without.streams} / ${on.withKey.streams} / ${on.retry.streams}`, "");
    row("", "same, streams off", `${off.without.streams} / ${off.withKey.streams} / ${off.retry.streams}`, "");
    const { multi, singles, batch } = publish.rooms;
    row("", `${publish.rooms.rooms} rooms: SQS sends (app + deliver), roomIds / publish ×${publish.rooms.rooms} / publishBatch`, `${multi.appSqs}+${multi.deliverSqs} / ${singles.appSqs}+${singles.deliverSqs} / ${batch.appSqs}+${batch.deliverSqs}`, "");
    row("", "first call → last receipt (median)", `${ms(multi.ms)} / ${ms(singles.ms)} / ${ms(batch.ms)}`, "");
  }

  if (only.has("cost")) {
    // What it costs (bench/cost.ts, its own hub): billed units of one notification to rooms of 10, 1,000 and 10,000, times bench/prices.ts.
    console.error(`\n[cost] billed units per notification to rooms of 10, 1,000 and 10,000 (10,000 WebSocket clients: minutes to connect), dollars per million deliveries and per connection-month`);
    const cost = scenarioScript<CostFigures>("cost.ts", quick);
    results.cost = cost;
    const usd = (v: number) => `$${v.toFixed(3)}`;
    row("12 cost ($ per million deliveries)", `rooms of ${cost.rooms.map((r) => r.size.toLocaleString("en-US")).join(" / ")}`, cost.rooms.map((r) => usd(r.perMillionDeliveries.total)).join(" / "), cost.rooms.map((r) => usd(r.seed.perMillionDeliveries.total)).join(" / "));
    row("", "per connection-month", `$${cost.connectionMonth.dollars.total.toFixed(4)}`, "");
  }

  if (only.has("presence")) {
    // Presence (bench/presence.ts, its own hubs): member events in a room of 1,000, posts per join, a read of 10,000.
    console.error(`\n[presence] member event latency in a room of 1,000, posts per join, a presence read of 10,000 through the SDK, the sweep at 10,000 connections`);
    const presence = scenarioScript<PresenceFigures>("presence.ts", quick);
    results.presence = presence;
    const { singles, diffs, read } = presence;
    row(`13 presence (room of ${presence.members.toLocaleString("en-US")})`, "join / leave → members' receipt p50 / p99 (single events)", `${singles.joinP50} / ${singles.joinP99} ms, ${singles.leaveP50} / ${singles.leaveP99} ms`, "");
    row("", `joins at ${diffs.joinsPerSecond}/s as diffs: receipt p50 / p99, posts per join`, `${diffs.p50} / ${diffs.p99} ms, ${diffs.postsPerJoin}`, "");
    row("", "posts per join (rooms of " + presence.postsPerJoin.map((p) => p.members.toLocaleString("en-US")).join(" / ") + ")", presence.postsPerJoin.map((p) => p.measured ?? `${p.rule} (rule)`).join(" / "), "");
    row("", `presence read of ${read.members.toLocaleString("en-US")} (SDK): pages, time; occupancy`, `${read.pages}, ${read.ms} ms; ${read.occupancyMs} ms`, "");
    const sweep = presence.sweepPer10kConnections;
    const steady = sweep.runs[sweep.runs.length - 2];
    row(
      "",
      `sweep per 10,000 connections (measured at ${sweep.connections.toLocaleString("en-US")}): a run's Scan; a month at 1 run/min`,
      `${steady.scanned} items, ${steady.pages} pages, ${steady.scanReadUnits} RRU, ${steady.handlerMs} ms; $${sweep.monthly.steady} (late tabs asked every run: $${sweep.monthly.withLateEveryRun})`,
      "",
    );
  }

  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const printed = table.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ")).join("\n");
  out("\n" + printed + "\n");
  const resultsFile = outputs.results;
  const previous = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, "utf8")) as Record<string, unknown>) : {};
  fs.writeFileSync(resultsFile, JSON.stringify({ ...previous, ...results }, null, 2) + "\n");
  out(`\nwrote ${path.relative(ROOT, resultsFile)}${results.chart && !quick ? ` and ${path.relative(ROOT, outputs.chart)}` : ""}\n`);
  if (outputs.benchmarksMd) {
    updateBenchmarksMd(JSON.parse(fs.readFileSync(resultsFile, "utf8")), outputs.benchmarksMd);
    out("updated the figures in BENCHMARKS.md\n");
  } else if (!values["update-docs"]) out("tracked files untouched; npm run bench -- --update-docs refreshes bench/results.json, bench/chart.svg and BENCHMARKS.md\n");
  // Scenario figures by name, and post-cost's at the top level too (hub_us_per_post, ...).
  if (json) process.stdout.write(JSON.stringify({ ...results, ...(results.postCost as object | undefined) }) + "\n");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
