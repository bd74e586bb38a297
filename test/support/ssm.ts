/**
 * A stand-in for SSM Parameter Store's GetParameter (JSON 1.1 protocol), so the serialized
 * authorizer can read its signing secret the way it does on AWS: through the real SSM client.
 * With `throttle`, it answers as SSM does past its shared rate (40 GetParameter a second by
 * default): 400 ThrottlingException for every request beyond `perWindow` in a window.
 */
import * as http from "http";
import type { AddressInfo } from "net";

export interface ParameterStore {
  endpoint: string;
  requests: string[];
  throttled: number;
  /** When the last value was handed out (epoch ms). */
  lastServedAt: number;
  stop(): Promise<void>;
}

export async function startParameterStore(parameters: Record<string, string>, throttle?: { perWindow: number; windowMs: number }): Promise<ParameterStore> {
  const requests: string[] = [];
  let window = { started: 0, count: 0 };
  const store = { throttled: 0, lastServedAt: 0 };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const target = String(request.headers["x-amz-target"] ?? "");
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { Name?: string; WithDecryption?: boolean };
      requests.push(`${target} ${body.Name} decrypt=${body.WithDecryption}`);
      if (throttle) {
        const now = Date.now();
        if (now - window.started >= throttle.windowMs) window = { started: now, count: 0 };
        if (++window.count > throttle.perWindow) {
          store.throttled++;
          response.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
          response.end(JSON.stringify({ __type: "ThrottlingException", message: "Rate exceeded" }));
          return;
        }
      }
      const value = body.Name ? parameters[body.Name] : undefined;
      if (target !== "AmazonSSM.GetParameter" || value === undefined) {
        response.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
        response.end(JSON.stringify({ __type: "ParameterNotFound", message: "not found" }));
        return;
      }
      store.lastServedAt = Date.now();
      response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ Parameter: { Name: body.Name, Type: "SecureString", Value: value, Version: 1 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    get throttled() {
      return store.throttled;
    },
    get lastServedAt() {
      return store.lastServedAt;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
