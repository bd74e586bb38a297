/** Worker threads that run the deliver handler, one invocation at a time each, like concurrent Lambdas. */
import * as path from "path";
import { Worker } from "worker_threads";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { Logger, LogLevel } from "../core/log";
import type { DeliverWorkerConfig, WorkerReply } from "./deliverWorker";

export function startDeliverPool(size: number, config: DeliverWorkerConfig, log: Logger) {
  const file = path.join(__dirname, `deliverWorker${path.extname(__filename)}`);
  // From the TypeScript sources (npm run dev, tests) the worker registers ts-node first.
  const source = file.endsWith(".ts") ? `require("ts-node").register({ transpileOnly: true }); require(${JSON.stringify(file)});` : file;
  const pending = new Map<number, { resolve: (r: SQSBatchResponse) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  const idle: Worker[] = [];
  const waiting: ((worker: Worker) => void)[] = [];
  const workers = Array.from({ length: size }, () => {
    const worker = new Worker(source, { eval: file.endsWith(".ts"), workerData: config });
    worker.on("message", (reply: WorkerReply) => {
      if ("log" in reply) {
        const { message, level: _level, time: _time, ...fields } = JSON.parse(reply.log) as Record<string, unknown>;
        void _level;
        void _time;
        log[reply.level as LogLevel](String(message), fields);
        return;
      }
      const call = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error !== undefined) call?.reject(new Error(reply.error));
      else call?.resolve(reply.response as SQSBatchResponse);
    });
    worker.on("error", (err) => log.error("deliver worker failed", { error: err.message }));
    idle.push(worker);
    return worker;
  });

  const acquire = () => new Promise<Worker>((resolve) => (idle.length ? resolve(idle.pop()!) : waiting.push(resolve)));
  const release = (worker: Worker) => (waiting.length ? waiting.shift()!(worker) : idle.push(worker));

  return {
    async invoke(event: SQSEvent): Promise<SQSBatchResponse> {
      const worker = await acquire();
      try {
        const id = nextId++;
        return await new Promise<SQSBatchResponse>((resolve, reject) => {
          pending.set(id, { resolve, reject });
          worker.postMessage({ id, event });
        });
      } finally {
        release(worker);
      }
    },
    stop: () => Promise.all(workers.map((w) => w.terminate())).then(() => undefined),
  };
}
