/**
 * Rewrites the figures section of BENCHMARKS.md (between the markers) from bench/results.json,
 * with each target checked. The method and the notes around it are written by hand.
 * Run by `npm run bench` after a full run; alone: `node -r ts-node/register/transpile-only bench/report.ts`.
 */
import * as fs from "fs";
import * as path from "path";
import type { ArtifactRow, ArtifactsFigures, DeliverVsBaseline } from "./artifacts";
import type { PostCostFigures } from "./postCost";
import type { PostCostLayoutFigures } from "./postCostLayout";
import type { RoomsFigures } from "./rooms";
import type { ContentionFigures } from "./contention";
import type { BudgetFigures } from "./budget";
import type { PublishFigures } from "./publish";
import type { CostFigures } from "./cost";

const START = "<!-- figures:start -->";
const END = "<!-- figures:end -->";

interface Results {
  date: string;
  machine: { cpus: number; cpu?: string; memoryGiB: number; node: string };
  fanout?: { room: number; table: number; ours: Figures; seed: Figures };
  large?: { room: number; chunk: number; ours: Run; seed: Run };
  chart?: { table: number };
  artifacts?: ArtifactRow[];
  artifactsPackaging?: Omit<ArtifactsFigures, "rows" | "deliverVsBaseline">;
  deliverVsBaseline?: DeliverVsBaseline;
  rooms?: RoomsFigures;
  contention?: ContentionFigures;
  budget?: BudgetFigures;
  publish?: PublishFigures;
  cost?: CostFigures;
  connect?: { coldP50: number; coldP99: number; warmP50: number; warmP99: number; revokedAfterWarmStatus: number };
  postCost?: PostCostFigures;
  postCostLayout?: PostCostLayoutFigures;
  load?: { clients: number; notifications: number; deliveries: number; lost: number; duplicates: number; p50: number; p99: number; notificationsPerSecond: number; deliveriesPerSecond: number };
}
interface Figures {
  itemsReadPerMessage: number;
  capacityUnitsPerMessage: number;
  deliveryMs: number;
  lost: number;
}
interface Run {
  ms: number;
  lost: number;
  invocations: number;
}

const verdict = (met: boolean, detail: string) => `${met ? "met" : "**missed**"} (${detail})`;

export function renderFigures(r: Results): string {
  const lines: string[] = [];
  lines.push(`Latest run: ${r.date.slice(0, 16).replace("T", " ")} UTC, ${r.machine.cpus} cores (${r.machine.cpu ?? "unknown CPU"}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}.`, "");
  const targets: string[][] = [];
  if (r.fanout) {
    const { ours, seed } = r.fanout;
    lines.push(`### 1. Fan-out: one message to a room of ${r.fanout.room.toLocaleString("en-US")} in a table of ${r.fanout.table.toLocaleString("en-US")}`, "");
    lines.push("| figure (median of the run's messages) | notification-hub | seed design |", "| --- | ---: | ---: |");
    lines.push(`| DynamoDB items read per message | ${ours.itemsReadPerMessage.toLocaleString("en-US")} | ${seed.itemsReadPerMessage.toLocaleString("en-US")} |`);
    lines.push(`| read capacity consumed per message | ${ours.capacityUnitsPerMessage.toFixed(1)} | ${seed.capacityUnitsPerMessage.toFixed(1)} |`);
    lines.push(`| SendMessage → last client's receipt | ${Math.round(ours.deliveryMs)} ms | ${Math.round(seed.deliveryMs)} ms |`);
    lines.push(`| lost | ${ours.lost} | ${seed.lost} |`, "");
    const ratio = seed.itemsReadPerMessage / ours.itemsReadPerMessage;
    targets.push(["items read ≥ 10× fewer than the baseline", verdict(ratio >= 10, `${ratio.toFixed(1)}× fewer`)]);
    targets.push(["fan-out no slower than the baseline", verdict(ours.deliveryMs <= seed.deliveryMs, `${Math.round(ours.deliveryMs)} vs ${Math.round(seed.deliveryMs)} ms`)]);
  }
  if (r.chart) lines.push(`![Delivery time by room size](bench/chart.svg)`, "");
  if (r.large) {
    const { ours, seed } = r.large;
    lines.push(`### 2. Large room: ${r.large.room.toLocaleString("en-US")} connections in one room`, "");
    lines.push("| figure (median of 3) | notification-hub | seed design |", "| --- | ---: | ---: |");
    lines.push(`| SendMessage → last client's receipt | ${Math.round(ours.ms)} ms | ${Math.round(seed.ms)} ms |`);
    lines.push(`| deliver invocations per message | ${ours.invocations} (chunks of ${r.large.chunk.toLocaleString("en-US")}) | ${seed.invocations} |`);
    lines.push(`| lost (3 messages) | ${ours.lost} | ${seed.lost} |`, "");
    targets.push(["large room faster than the baseline", verdict(ours.ms < seed.ms, `${Math.round(ours.ms)} vs ${Math.round(seed.ms)} ms`)]);
  }
  if (r.artifacts) {
    const p = r.artifactsPackaging;
    lines.push("### 3. Lambda artifacts", "");
    if (p && r.artifacts[0]?.before) {
      lines.push(
        `Before: commit ${p.beforeCommit}, the AWS SDK taken from the Lambda runtime, measured in the flat layout the tests used then (the SDK's whole dependency closure on NODE_PATH, Node ${p.node.flat}), where that code loads; "on Lambda" is what loading it in the nodejs22.x runtime's real layout says. ` +
          `After: today's functions, the SDK in one layer per hub (${p.layerPackages} packages, ${p.layerFiles} files, zip ${p.layerZipKiB} KiB, uploaded once and shared by every function), in the same flat layout (same Node: the packaging's own effect) and in the runtime's layout on Node ${p.node.lambda}. Cold load: a fresh process importing the handler (the init phase's import), median of 5, the three alternated.`,
        "",
        "| function | zip before | zip after (+ shared layer) | cold load before (flat) | after (flat) | after (Lambda layout, Node 22) | before, on Lambda |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
      );
      for (const a of r.artifacts) lines.push(`| ${a.function} | ${a.before.zipKiB} KiB | ${a.zipKiB} KiB | ${a.before.requireMs} ms | ${a.flatRequireMs} ms | ${a.requireMs} ms | ${a.before.onLambda.replace(/\|/g, "\\|")} |`);
      const failing = r.artifacts.filter((a) => a.before.onLambda !== "loads").length;
      lines.push("", `Before, ${failing} of ${r.artifacts.length} functions fail to load in the runtime's layout; after, all ${r.artifacts.length} load.`);
      targets.push(["every function loads in the runtime's layout", verdict(r.artifacts.every((a) => Number.isFinite(a.requireMs)), `${r.artifacts.length} of ${r.artifacts.length}`)]);
    } else {
      lines.push("| function | zip | files | cold `require` (median of 5) |", "| --- | ---: | ---: | ---: |");
      for (const a of r.artifacts) lines.push(`| ${a.function} | ${a.zipKiB} KiB | ${a.files} | ${a.requireMs} ms |`);
    }
    lines.push("");
    const d = r.deliverVsBaseline;
    if (d) {
      lines.push(
        `deliver against commit ${d.commit} (before the signed post path), measured the same way in the same run (comments removed from both; ` +
          `that commit's deliver as it was built then: ${d.baselineZipKiBAsBuilt} KiB):`,
        "",
        `| deliver | ${d.commit} | now | now / then |`,
        "| --- | ---: | ---: | ---: |",
        `| zip | ${d.baselineZipKiB} KiB | ${d.zipKiB} KiB | ${d.zipRatio}× |`,
        `| cold \`require\` (alternated, median of 5) | ${d.baselineRequireMs} ms | ${d.requireMs} ms | ${d.requireRatio}× |`,
        ...(d.minifiedZipKiB ? [`| zip if minified (terser over the serialized code; not shipped) | ${d.baselineZipKiB} KiB | ${d.minifiedZipKiB} KiB | ${d.minifiedZipRatio}× |`] : []),
        "",
      );
      targets.push(["deliver zip ≤ 1.1× the baseline's", verdict(d.zipRatio <= 1.1, `${d.zipRatio}×`)]);
      targets.push(["deliver cold require ≤ 1.1× the baseline's", verdict(d.requireRatio <= 1.1, `${d.requireRatio}×`)]);
    }
    const biggest = Math.max(...r.artifacts.map((a) => a.zipKiB));
    const slowest = Math.max(...r.artifacts.map((a) => a.requireMs));
    targets.push(["every zip ≤ 1 MB", verdict(biggest <= 1024, `largest ${biggest} KiB`)]);
    targets.push(["cold require ≤ 150 ms each", verdict(slowest <= 150, `slowest ${slowest} ms`)]);
  }
  if (r.connect) {
    const c = r.connect;
    lines.push("### 4. Connect: handshake latency", "", "| authorizer | p50 | p99 |", "| --- | ---: | ---: |");
    lines.push(`| cold (bcrypt on every token) | ${c.coldP50.toFixed(1)} ms | ${c.coldP99.toFixed(1)} ms |`);
    lines.push(`| warm (token already verified against the same stored hash) | ${c.warmP50.toFixed(1)} ms | ${c.warmP99.toFixed(1)} ms |`, "");
    lines.push(`A token revoked after the cache was warm: refused with HTTP ${c.revokedAfterWarmStatus}.`, "");
    const ratio = c.coldP50 / c.warmP50;
    targets.push(["warm connect p50 ≥ 5× lower than cold", verdict(ratio >= 5, `${ratio.toFixed(1)}× lower`)]);
    targets.push(["revocation immediate with a warm cache", verdict(c.revokedAfterWarmStatus === 403, `HTTP ${c.revokedAfterWarmStatus}`)]);
  }
  if (r.load) {
    const l = r.load;
    lines.push(`### 5. Load: ${l.clients.toLocaleString("en-US")} concurrent clients, ${l.notifications} notifications`, "");
    lines.push("| figure | value |", "| --- | ---: |");
    lines.push(`| deliveries | ${l.deliveries.toLocaleString("en-US")} |`, `| lost | ${l.lost} |`, `| duplicates | ${l.duplicates} |`);
    lines.push(`| delivery latency p50 / p99 | ${l.p50} / ${l.p99} ms |`);
    lines.push(`| notifications per second | ${l.notificationsPerSecond.toFixed(1)} |`, `| deliveries per second | ${Math.round(l.deliveriesPerSecond).toLocaleString("en-US")} |`, "");
  }
  if (r.postCost) {
    const c = r.postCost;
    lines.push(`### 6. Post cost: client CPU per @connections post (${c.posts.toLocaleString("en-US")} posts per path and round, median of ${c.rounds} rounds, ${c.frame_bytes}-byte frame)`, "");
    lines.push("| path | µs of CPU per post | hub path vs it |", "| --- | ---: | ---: |");
    lines.push(`| hub path (core/connections.ts, ${c.concurrency} in flight) | ${c.hub_us_per_post} | 1 |`);
    lines.push(`| AWS SDK client as fan-out used it (500 in flight over 64 sockets) | ${c.sdk_us_per_post} | ${c.hub_vs_sdk.toFixed(3)} |`);
    lines.push(`| AWS SDK client in the hub's own loop (${c.concurrency} in flight) | ${c.sdk_same_loop_us_per_post} | ${c.hub_vs_sdk_same_loop.toFixed(3)} |`);
    lines.push(`| unsigned keep-alive HTTP, hub's loop (the floor) | ${c.floor_us_per_post} | ${c.hub_vs_floor.toFixed(2)}× |`, "");
    targets.push(["post CPU ≤ ¼ of the SDK client's (as fan-out used it)", verdict(c.hub_vs_sdk <= 0.25, `${c.hub_vs_sdk.toFixed(3)}`)]);
    targets.push(["post CPU ≤ ¼ of the SDK client's (in the hub's loop)", verdict(c.hub_vs_sdk_same_loop <= 0.25, `${c.hub_vs_sdk_same_loop.toFixed(3)}`)]);
    targets.push(["post CPU within 2.5× of unsigned HTTP", verdict(c.hub_vs_floor <= 2.5, `${c.hub_vs_floor.toFixed(2)}×`)]);
  }
  if (r.postCostLayout) {
    const c = r.postCostLayout;
    lines.push(
      `### 6b. Post cost by where the AWS SDK is loaded from (${c.posts.toLocaleString("en-US")} posts per round, a fresh process per round, ${c.rounds} rounds alternated, medians)`,
      "",
      "The hub path of section 6 with `@smithy/signature-v4` and the other SDK packages resolved from this checkout's node_modules (flat, as measured before the SDK layer) or from a folder laid out as the SDK layer (as `/opt/nodejs/node_modules` on Lambda), and the same on the runtime's Node 22. \"vs unsigned\" divides by the unsigned posts of the same process, which cancels most of the host's speed.",
      "",
      "| SDK loaded from | Node | µs of CPU per post | vs unsigned posts | rounds (µs) |",
      "| --- | --- | ---: | ---: | --- |",
    );
    for (const [name, f] of Object.entries(c.layouts)) lines.push(`| ${name} | ${f.node} | ${f.hub_us_per_post} | ${f.hub_vs_floor}× | ${f.rounds_us.join(", ")} |`);
    lines.push("", `layer / flat on the same Node: ${c.layer_vs_flat}×.`, "");
  }
  if (r.rooms && !r.rooms.quick) {
    const { subscribe: s, delivery: d } = r.rooms;
    lines.push("### 8. Many rooms per connection", "", `Run of ${r.rooms.date.slice(0, 16).replace("T", " ")} UTC (\`bench/rooms.ts\`, as \`npm run bench -- --only rooms\` runs it).`, "");
    lines.push("| subscribe → `hub.subscribed` | n | p50 | p99 |", "| --- | ---: | ---: | ---: |");
    lines.push(`| one connection, one after another | ${s.sequential.n} | ${s.sequential.p50.toFixed(1)} ms | ${s.sequential.p99.toFixed(1)} ms |`);
    lines.push(`| ${s.concurrent.connections} connections at once, each one after another | ${s.concurrent.n} | ${s.concurrent.p50.toFixed(1)} ms | ${s.concurrent.p99.toFixed(1)} ms |`, "");
    lines.push(
      `| delivery to a room of ${d.members.toLocaleString("en-US")} (median of ${d.messages}, alternated) | each in ${d.roomsEach} rooms (rooms token) | each in one room (seed token) | ratio |`,
      "| --- | ---: | ---: | ---: |",
    );
    lines.push(`| SendMessage → last client's receipt | ${Math.round(d.manyRooms.ms)} ms | ${Math.round(d.oneRoom.ms)} ms | ${d.ratio}× |`);
    lines.push(`| DynamoDB items read per message | ${d.manyRooms.itemsRead.toLocaleString("en-US")} | ${d.oneRoom.itemsRead.toLocaleString("en-US")} | ${(d.manyRooms.itemsRead / d.oneRoom.itemsRead).toFixed(2)}× |`);
    lines.push(`| lost / duplicates (${d.messages} messages) | ${d.manyRooms.lost} / ${d.manyRooms.duplicates} | ${d.oneRoom.lost} / ${d.oneRoom.duplicates} | |`, "");
    targets.push(["delivery reads only the room's members with 20 rooms per connection", verdict(d.manyRooms.itemsRead <= d.members * 1.01, `${d.manyRooms.itemsRead} items for ${d.members} members`)]);
  }
  if (r.contention) {
    const { ours, before, writers, each } = r.contention;
    lines.push(
      `### 9. Contention: ${writers} members sending ${each} messages each at once into one room`,
      "",
      `Run of ${r.contention.date.slice(0, 16).replace("T", " ")} UTC (\`bench/contention.ts\`, as \`npm run bench -- --only contention\` runs it): the real sendMessage handler, ${writers * each} invocations at once in one process, against dynalite behind a recording proxy that counts every DynamoDB request; the room had one message before. "Before" is commit ${r.contention.beforeCommit}'s handler (every writer at head + 1, one slot up per lost race), from that commit's tree, in the same run.`,
      "",
      `| figure | seq counter (now) | head + 1 (${r.contention.beforeCommit}) |`,
      "| --- | ---: | ---: |",
    );
    const cell = <K extends keyof typeof ours>(key: K, format: (v: (typeof ours)[K]) => string = String) => `| ${format(ours[key])} | ${before ? format(before[key]) : "n/a"} |`;
    lines.push(`| all ${writers * each} sends answered after ${cell("clearMs", (v) => `${v} ms`)}`);
    lines.push(`| stored ${cell("stored")}`, `| refused (\`hub.error\`) ${cell("refused", (v) => String(v))}`, `| lost (not stored) ${cell("lost")}`);
    lines.push(`| stored seqs consecutive, each once ${cell("consecutive", (v) => (v ? "yes" : "no"))}`);
    lines.push(`| frames the ${writers} members received (of ${writers * each * writers}) ${cell("receipts")}`);
    lines.push(`| DynamoDB requests per message, streams table ${cell("streamsRequestsPerMessage")}`, `| DynamoDB requests per message, all tables ${cell("requestsPerMessage")}`, "");
    targets.push(["contention: 0 lost, 0 refused", verdict(ours.lost === 0 && ours.refused === 0, `${ours.lost} lost, ${ours.refused} refused`)]);
    targets.push(["contention: ≤ 4 streams-table requests per message", verdict(ours.streamsRequestsPerMessage <= 4, `${ours.streamsRequestsPerMessage}`)]);
  }
  if (r.budget && !r.budget.quick) {
    const b = r.budget;
    const { lanes, oneQueue } = b;
    lines.push(
      `### 10. The @connections budget: a broadcast to ${lanes.room.toLocaleString("en-US")} under ${b.postsPerSecond.toLocaleString("en-US")} posts/s, small notifications during it`,
      "",
      `Run of ${b.date.slice(0, 16).replace("T", " ")} UTC (\`bench/budget.ts\`). \`delivery.postsPerSecond\` and the emulated account's rate are both ${b.postsPerSecond.toLocaleString("en-US")}; ${b.workers} deliver workers in all. ` +
        `"bulk queue": the hub as it ships (big rooms' chunks on their own queue and workers, at most 80 % of each budget window); "one queue": the same hub with \`queue.bulkConcurrency: 0\` (chunks on the notification queue, as before). ` +
        `During the broadcast, ${lanes.small.n} notifications, half to user channels, half to a room of 25: SendMessage → last recipient's receipt.`,
      "",
      "| figure | bulk queue | one queue | one queue / bulk queue |",
      "| --- | ---: | ---: | ---: |",
      `| small notifications p50 | ${lanes.small.p50} ms | ${oneQueue.small.p50} ms | ${b.ratio.p50}× |`,
      `| small notifications p99 | ${lanes.small.p99} ms | ${oneQueue.small.p99} ms | ${b.ratio.p99}× |`,
      `| broadcast: SendMessage → last receipt | ${lanes.broadcastMs} ms | ${oneQueue.broadcastMs} ms | |`,
      `| lost (broadcast + small) | ${lanes.lost + lanes.small.lost} | ${oneQueue.lost + oneQueue.small.lost} | |`,
      `| dead letters | ${lanes.deadLetters} | ${oneQueue.deadLetters} | |`,
      `| @connections requests / 429s the account answered | ${lanes.requests.toLocaleString("en-US")} / ${lanes.throttled} | ${oneQueue.requests.toLocaleString("en-US")} / ${oneQueue.throttled} | |`,
      `| busiest second (requests) | ${lanes.peakPerSecond} | ${oneQueue.peakPerSecond} | |`,
      "",
    );
    targets.push(["budget: 0 lost, 0 dead letters", verdict(lanes.lost + lanes.small.lost + lanes.deadLetters === 0, `${lanes.lost + lanes.small.lost} lost, ${lanes.deadLetters} dead letters`)]);
    targets.push(["small notifications faster with the bulk queue (p99)", verdict(lanes.small.p99 < oneQueue.small.p99, `${b.ratio.p99}×`)]);
  }
  if (r.publish && !r.publish.quick) lines.push(renderPublish(r.publish), "");
  if (r.cost && !r.cost.quick) lines.push(renderCost(r.cost), "");
  const lost =
    (r.fanout?.ours.lost ?? 0) +
    (r.large?.ours.lost ?? 0) +
    (r.load?.lost ?? 0) +
    (r.rooms && !r.rooms.quick ? r.rooms.delivery.manyRooms.lost + r.rooms.delivery.oneRoom.lost : 0) +
    (r.contention?.ours.lost ?? 0) +
    (r.budget && !r.budget.quick ? r.budget.lanes.lost + r.budget.lanes.small.lost : 0);
  targets.push(["zero lost in every scenario", verdict(lost === 0, `${lost} lost`)]);
  lines.push("### Targets", "", "| target | result |", "| --- | --- |", ...targets.map(([t, v]) => `| ${t} | ${v} |`));
  return lines.join("\n");
}

/** Section 10: what an idempotency key costs, and one publish to many rooms against one publish per room. */
export function renderPublish(p: PublishFigures): string {
  const n = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
  const lines = [
    "### 11. Publishing: idempotency keys and many rooms",
    "",
    `Run of ${p.date.slice(0, 16).replace("T", " ")} UTC (\`bench/publish.ts\`, as \`npm run bench -- --only publish\` runs it): the real deliver function on the local hub, fed from a queue of its own (4 pollers, 10 records a batch), every AWS request counted by recording proxies; one WebSocket member per room.`,
    "",
    `${p.keyCost.streamsOn.publishes} publishes in series to one room, per publish: without a key, with a new key each, then each keyed one again (a retry, which posts nothing):`,
    "",
    "| requests per publish | streams on: no key | key | retry | streams off: no key | key | retry |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const { streamsOn: on, streamsOff: off } = p.keyCost;
  const cells = (pick: (x: PublishFigures["keyCost"]["streamsOn"]["without"]) => number) =>
    [on.without, on.withKey, on.retry, off.without, off.withKey, off.retry].map((x) => n(pick(x))).join(" | ");
  lines.push(`| app's SQS sends | ${cells((x) => x.appSqs)} |`);
  lines.push(`| DynamoDB, streams table | ${cells((x) => x.streams)} |`);
  lines.push(`| DynamoDB, connections table | ${cells((x) => x.connections)} |`);
  lines.push(`| posts (one member) | ${cells((x) => x.posts)} |`);
  lines.push(`| time per publish, in series | ${[on.without, on.withKey, on.retry, off.without, off.withKey, off.retry].map((x) => `${x.msPerPublish.toFixed(1)} ms`).join(" | ")} |`);
  lines.push("", `Frames the member got from the retries: ${on.framesFromRetries} (streams on), ${off.framesFromRetries} (streams off).`, "");
  const { multi, singles, batch, rooms, rounds } = p.rooms;
  lines.push(
    `One event to ${rooms} rooms (each room's stream already started), median of ${rounds} rounds alternated:`,
    "",
    `| per event | \`publish({ roomIds })\` | \`publish\` ×${rooms} (10 at a time) | \`publishBatch\` of ${rooms} |`,
    "| --- | ---: | ---: | ---: |",
    `| app's SQS sends | ${multi.appSqs} | ${singles.appSqs} | ${batch.appSqs} |`,
    `| deliver's SQS sends (the rooms' bodies) | ${multi.deliverSqs} | ${singles.deliverSqs} | ${batch.deliverSqs} |`,
    `| queue records delivered | ${multi.records} | ${singles.records} | ${batch.records} |`,
    `| DynamoDB requests, streams table | ${multi.streams} | ${singles.streams} | ${batch.streams} |`,
    `| DynamoDB requests, connections table | ${multi.connections} | ${singles.connections} | ${batch.connections} |`,
    `| posts | ${multi.posts} | ${singles.posts} | ${batch.posts} |`,
    `| first call → every member's receipt | ${multi.ms} ms (${multi.msRounds.join(", ")}) | ${singles.ms} ms (${singles.msRounds.join(", ")}) | ${batch.ms} ms (${batch.msRounds.join(", ")}) |`,
  );
  return lines.join("\n");
}

/** Section 12: dollars per million deliveries and per connection-month, from the counts bench/cost.ts measured. */
export function renderCost(c: CostFigures): string {
  const usd = (v: number) => (v >= 0.1 ? `$${v.toFixed(2)}` : v >= 0.001 ? `$${v.toFixed(4)}` : `$${v.toPrecision(2)}`);
  const n = (v: number) => (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 }));
  const header = `| | ${c.rooms.map((r) => `room of ${r.size.toLocaleString("en-US")}`).join(" | ")} |`;
  const rule = `| --- | ${c.rooms.map(() => "---:").join(" | ")} |`;
  const row = (label: string, pick: (r: CostFigures["rooms"][number]) => string) => `| ${label} | ${c.rooms.map(pick).join(" | ")} |`;
  const p = c.prices;
  const big = c.rooms.find((r) => r.scale !== 1 && r.chunk < r.measuredConnections);
  /** A list price as published: its own decimals, at least cents. */
  const money = (v: number) => `$${v.toFixed(Math.max(2, (String(v).split(".")[1] ?? "").length))}`;
  const lines = [
    "### 12. What it costs",
    "",
    `Run of ${c.date.slice(0, 16).replace("T", " ")} UTC (\`bench/cost.ts\`, as \`npm run bench -- --only cost\` runs it${c.runSeconds ? `; ${c.runSeconds} s, connecting the rooms included` : ""}): the real deliver function on the local hub (main and bulk queues, the @connections budget at ${c.postsPerSecond.toLocaleString("en-US")}/s, room streams on, ${c.deliverMemoryMb} MB), every DynamoDB request asked for its ConsumedCapacity, SQS requests, invocations and posts counted; one notification of 200 bytes at a time, the median round of several. ` +
      (big
        ? `The room of ${big.size.toLocaleString("en-US")} is ${big.measuredConnections.toLocaleString("en-US")} connections with a chunk size of ${big.chunk} (the same ${Math.ceil(big.measuredConnections / big.chunk)} chunks as ${big.size.toLocaleString("en-US")} at the default ${(big.chunk * big.scale).toLocaleString("en-US")}); posts, the room's read units, the budget's writes and handler time are multiplied by ${big.scale}.`
        : `Every room is measured at its size (the room of ${c.rooms[c.rooms.length - 1].size.toLocaleString("en-US")} is as many WebSocket clients).`),
    "",
    `Prices: ${p.region}, as of ${p.date} (\`bench/prices.ts\`): Lambda arm64 ${money(p.lambda.perMillionRequests)} per million requests and ${money(p.lambda.perGbSecondArm64)} per GB-s, DynamoDB on-demand ${money(p.dynamodb.perMillionReadUnits)} / ${money(p.dynamodb.perMillionWriteUnits)} per million read / write units, SQS ${money(p.sqs.perMillionRequests)} per million requests, API Gateway WebSocket ${money(p.apiGateway.perMillionMessages)} per million messages and ${money(p.apiGateway.perMillionConnectionMinutes)} per million connection minutes.`,
    "",
  ];
  if (c.priceRows) {
    lines.push("| price | eu-west-1 | source | confirmed |", "| --- | --- | --- | --- |");
    for (const r of c.priceRows) lines.push(`| ${r.item} | ${r.price} | ${r.url} | ${r.confirmed ? "yes" : `no${r.note ? `: ${r.note}` : ""}`} |`);
    lines.push("");
  }
  lines.push(
    "Billed units of one notification:",
    "",
    header,
    rule,
    row("deliver invocations", (r) => n(r.perNotification.lambdaInvocations)),
    row("handler time, GB-s (upper bound)", (r) => r.perNotification.lambdaGbSeconds.toFixed(3)),
    row("DynamoDB read units", (r) => n(r.perNotification.dynamodbReadUnits)),
    row("DynamoDB write units (streams + budget)", (r) => `${n(r.perNotification.dynamodbWriteUnits)} (${n(r.measured.writeUnitsByTable.streams ?? 0)} + ${n(r.perNotification.dynamodbWriteUnits - (r.measured.writeUnitsByTable.streams ?? 0))})`),
    row("SQS requests (send, chunks, receive, delete)", (r) => n(r.perNotification.sqsRequests)),
    row("API Gateway messages (posts)", (r) => n(r.perNotification.apiGatewayMessages)),
    "",
    "Dollars per million deliveries (one notification reaching one connection):",
    "",
    header,
    rule,
    row("Lambda", (r) => usd(r.perMillionDeliveries.lambda)),
    row("DynamoDB", (r) => usd(r.perMillionDeliveries.dynamodb)),
    row("SQS", (r) => usd(r.perMillionDeliveries.sqs)),
    row("API Gateway messages", (r) => usd(r.perMillionDeliveries.apiGateway)),
    row("**notification-hub**", (r) => `**${usd(r.perMillionDeliveries.total)}**`),
    row(`seed design (Scan of a ${c.seedTable.toLocaleString("en-US")}-connection table per message)`, (r) => `${usd(r.seed.perMillionDeliveries.total)} (DynamoDB ${usd(r.seed.perMillionDeliveries.dynamodb)})`),
    row(`Ably, list price ($${p.managed.ablyPerMillionMessages.toFixed(2)} per million messages)`, (r) => usd(r.managedPerMillionDeliveries.ably)),
    row(`AppSync Events, list price ($${p.managed.appSyncEventsPerMillionOperations.toFixed(2)} per million operations)`, (r) => usd(r.managedPerMillionDeliveries.appSyncEvents)),
    "",
  );
  const m = c.connectionMonth;
  lines.push(
    `Per connection-month (43,200 minutes, a ping every 8 minutes answered by API Gateway, a reconnect every 2 hours; a reconnect's units ${m.perReconnectSource}): ` +
      `connection minutes ${usd(m.counts.connectionMinutes * p.apiGateway.perMillionConnectionMinutes / 1e6)}, pings ${usd(5_400 * p.apiGateway.perMillionMessages / 1e6)}, reconnects ${usd(m.dollars.lambda + m.dollars.dynamodb)}: **${usd(m.dollars.total)}**. ` +
      `The managed services bill connections too (not priced here). Seed's Scan: ${c.seedReadUnitsPerConnection} read units per connection in the table, measured on this run's table.`,
  );
  return lines.join("\n");
}

export function updateBenchmarksMd(results: Results, file = path.join(__dirname, "..", "BENCHMARKS.md")): void {
  const text = fs.readFileSync(file, "utf8");
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${file} has no ${START} … ${END} section`);
  fs.writeFileSync(file, text.slice(0, start + START.length) + "\n" + renderFigures(results) + "\n" + text.slice(end));
}

if (require.main === module) {
  updateBenchmarksMd(JSON.parse(fs.readFileSync(path.join(__dirname, "results.json"), "utf8")) as Results);
  console.log("BENCHMARKS.md figures updated from bench/results.json");
}
