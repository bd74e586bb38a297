/** Worker threads that run the deliver handler, one invocation at a time each, like concurrent Lambdas. */
import * as path from "path";
import { Worker } from "worker_threads";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { HubObserver } from "../core/hubEvents";
import type { Logger, LogLevel } from "../core/log";
import type { DeliverWorkerConfig, WorkerReply, WorkerRequest } from "./deliverWorker";

/** Like the deliver Lambda's default timeout (see local/sqsPoller.ts). */
export const DEFAULT_WORKER_TIMEOUT_MS = 30_000;
/** A fresh worker's first invocation also loads its code, which Lambda allows 10 s on top (its init phase). */
const INIT_ALLOWANCE_MS = 10_000;

export interface DeliverPoolOptions {
  /**
   * An invocation still running after this is cut like a Lambda's timeout: its worker is
   * terminated (whatever it awaited goes with it) and a fresh one takes its place, so a stuck
   * invocation never holds a worker, and the poller loop waiting for it, for good.
   */
  timeoutMs?: number;
  /** Told the hub events the workers' deliver handlers report (they come as messages). */
  observe?: HubObserver;
}

export function startDeliverPool(size: number, config: DeliverWorkerConfig, log: Logger, options: DeliverPoolOptions = {}) {
  const file = path.join(__dirname, `deliverWorker${path.extname(__filename)}`);
  // From the TypeScript sources (npm run dev, tests) the worker registers ts-node first.
  const source = file.endsWith(".ts") ? `require("ts-node").register({ transpileOnly: true }); require(${JSON.stringify(file)});` : file;
  const timeoutMs = options.timeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
  const pending = new Map<number, { resolve: (r: SQSBatchResponse) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let stopped = false;
  const idle: Worker[] = [];
  const waiting: ((worker: Worker) => void)[] = [];
  const workers = new Set<Worker>();
  /** Workers that have answered once: their code is loaded. */
  const warm = new WeakSet<Worker>();

  function spawn(): Worker {
    const worker = new Worker(source, { eval: file.endsWith(".ts"), workerData: config });
    worker.on("message", (reply: WorkerReply) => {
      if ("log" in reply) {
        const { message, level: _level, time: _time, ...fields } = JSON.parse(reply.log) as Record<string, unknown>;
        void _level;
        void _time;
        log[reply.level as LogLevel](String(message), fields);
        return;
      }
      if ("event" in reply) {
        try {
          options.observe?.(reply.event);
        } catch {
          // A listener's fault must not stop the pool.
        }
        return;
      }
      warm.add(worker);
      const call = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error !== undefined) call?.reject(new Error(reply.error));
      else call?.resolve(reply.response as SQSBatchResponse);
    });
    worker.on("error", (err) => log.error("deliver worker failed", { error: err.message }));
    workers.add(worker);
    return worker;
  }
  for (let i = 0; i < size; i++) idle.push(spawn());

  const acquire = () => new Promise<Worker>((resolve) => (idle.length ? resolve(idle.pop()!) : waiting.push(resolve)));
  const release = (worker: Worker) => (waiting.length ? waiting.shift()!(worker) : idle.push(worker));

  /** Ends a stuck worker and puts a fresh one in its place. */
  function replace(worker: Worker): Worker {
    workers.delete(worker);
    void worker.terminate();
    return spawn();
  }

  return {
    /** `context`: what is left of the invocation's time is handed to the worker's handler as Lambda's context. */
    async invoke(event: SQSEvent, context?: { getRemainingTimeInMillis(): number }): Promise<SQSBatchResponse> {
      let worker = await acquire();
      const id = nextId++;
      let timer: NodeJS.Timeout | undefined;
      const limitMs = timeoutMs + (warm.has(worker) ? 0 : INIT_ALLOWANCE_MS);
      try {
        return await new Promise<SQSBatchResponse>((resolve, reject) => {
          pending.set(id, { resolve, reject });
          timer = setTimeout(() => {
            pending.delete(id);
            log.error("deliver invocation timed out; its worker is replaced", { timeout_ms: limitMs, records: event.Records.length });
            if (!stopped) worker = replace(worker);
            reject(new Error(`deliver invocation took longer than ${limitMs} ms`));
          }, limitMs);
          worker.postMessage({ id, event, remainingMs: context?.getRemainingTimeInMillis() } satisfies WorkerRequest);
        });
      } finally {
        clearTimeout(timer);
        if (!stopped) release(worker);
      }
    },
    stop: () => {
      stopped = true;
      return Promise.all([...workers].map((w) => w.terminate())).then(() => undefined);
    },
  };
}
