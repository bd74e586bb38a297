/**
 * A small HTTP server answering the @connections API the way API Gateway does, with faults
 * injected per connection id: 410 Gone, 429 throttles, 500s. Real parts cannot produce these
 * faults on demand, so this is the one stand-in the tests script.
 */
import * as http from "http";
import type { AddressInfo } from "net";

export type Fault = { status: 410 | 429 | 500 | 403; times?: number };

export interface ManagementApi {
  endpoint: string;
  /** Frames received per connection id, in order. */
  received: Map<string, string[]>;
  deleted: string[];
  requests: number;
  fault(connectionId: string, fault: Fault): void;
  stop(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  403: "ForbiddenException",
  410: "GoneException",
  429: "LimitExceededException",
  500: "InternalServerErrorException",
};

export async function startManagementApi(stage = "test"): Promise<ManagementApi> {
  const received = new Map<string, string[]>();
  const faults = new Map<string, Fault>();
  const api: ManagementApi = {
    endpoint: "",
    received,
    deleted: [],
    requests: 0,
    fault: (id, fault) => faults.set(id, { ...fault }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      api.requests++;
      const match = /^\/([^/]+)\/@connections\/([^/?]+)/.exec(request.url ?? "");
      if (!match || match[1] !== stage) {
        response.writeHead(404, { "content-type": "application/json", "x-amzn-errortype": "NotFoundException" });
        response.end(JSON.stringify({ message: "Not Found" }));
        return;
      }
      const id = decodeURIComponent(match[2]);
      const fault = faults.get(id);
      if (fault && (fault.times === undefined || fault.times > 0)) {
        if (fault.times !== undefined) fault.times--;
        response.writeHead(fault.status, { "content-type": "application/json", "x-amzn-errortype": ERROR_TYPES[fault.status] });
        response.end(JSON.stringify({ message: ERROR_TYPES[fault.status] }));
        return;
      }
      if (request.method === "POST") {
        const list = received.get(id) ?? [];
        list.push(Buffer.concat(chunks).toString("utf8"));
        received.set(id, list);
        response.writeHead(200, { "content-type": "application/json" });
        response.end("{}");
      } else if (request.method === "DELETE") {
        api.deleted.push(id);
        response.writeHead(204);
        response.end();
      } else {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ connectedAt: new Date().toISOString(), lastActiveAt: new Date().toISOString(), identity: { sourceIp: "127.0.0.1" } }));
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${stage}`;
  return api;
}
