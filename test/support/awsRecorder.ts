/**
 * A recording proxy in front of a local AWS stand-in (dynalite, fauxqs, the @connections API,
 * the parameter store): it forwards every request unchanged and writes down what IAM would
 * authorize for it, as an action and a resource ARN in the stack's account and region.
 */
import * as http from "http";
import type { AddressInfo } from "net";

export interface AwsRequest {
  action: string;
  resource: string;
}

export interface Recorder {
  endpoint: string;
  requests: AwsRequest[];
  stop(): Promise<void>;
}

export interface ArnContext {
  partition: string;
  region: string;
  account: string;
}

type Describe = (request: { method: string; path: string; target: string; body: string }) => AwsRequest[];

export async function startRecorder(target: string, describe: Describe): Promise<Recorder> {
  const upstream = new URL(target);
  const requests: AwsRequest[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push(...describe({ method: request.method ?? "GET", path: request.url ?? "/", target: String(request.headers["x-amz-target"] ?? ""), body: body.toString("utf8") }));
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers: { ...request.headers, host: upstream.host } },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      forward.on("error", () => {
        response.writeHead(502);
        response.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  // Keep the stand-in's path (the @connections API lives under /{stage}).
  const path = upstream.pathname === "/" ? "" : upstream.pathname;
  return {
    endpoint: `http://127.0.0.1:${address.port}${path}`,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const arn = (c: ArnContext, service: string, resource: string) => `arn:${c.partition}:${service}:${c.region}:${c.account}:${resource}`;

function json(body: string): Record<string, unknown> {
  try {
    return JSON.parse(body || "{}") as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** DynamoDB JSON protocol: one request per table (and index) the operation touches. */
export function dynamoRequests(c: ArnContext): Describe {
  return ({ target, body }) => {
    const operation = target.split(".").pop() ?? "";
    const input = json(body);
    const table = (name: string, index?: string) => arn(c, "dynamodb", `table/${name}${index ? `/index/${index}` : ""}`);
    if (operation === "TransactWriteItems" || operation === "TransactGetItems") {
      // IAM authorizes each item as its own action.
      return ((input.TransactItems as Record<string, { TableName: string }>[]) ?? []).flatMap((item) =>
        Object.entries(item).map(([kind, spec]) => ({ action: `dynamodb:${kind === "ConditionCheck" ? "ConditionCheckItem" : `${kind}Item`}`, resource: table(spec.TableName) })),
      );
    }
    if (input.RequestItems) return Object.keys(input.RequestItems as object).map((name) => ({ action: `dynamodb:${operation}`, resource: table(name) }));
    return [{ action: `dynamodb:${operation}`, resource: table(String(input.TableName), input.IndexName as string | undefined) }];
  };
}

const SQS_BATCH_ACTIONS: Record<string, string> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

/** SQS, JSON or query protocol: the queue is the last segment of its URL. */
export function sqsRequests(c: ArnContext): Describe {
  return ({ target, body }) => {
    let operation = target.split(".").pop() ?? "";
    let queueUrl = String(json(body).QueueUrl ?? "");
    if (!operation) {
      const form = new URLSearchParams(body);
      operation = form.get("Action") ?? "";
      queueUrl = form.get("QueueUrl") ?? "";
    }
    if (!queueUrl) return [{ action: `sqs:${operation}`, resource: arn(c, "sqs", "*") }];
    return [{ action: `sqs:${SQS_BATCH_ACTIONS[operation] ?? operation}`, resource: arn(c, "sqs", queueUrl.split("/").pop()!) }];
  };
}

/** SSM GetParameter; with the parameter's KMS key, also the Decrypt SSM makes as the caller. */
export function ssmRequests(c: ArnContext, keyArnOf: (parameter: string) => string | undefined): Describe {
  return ({ target, body }) => {
    const operation = target.split(".").pop() ?? "";
    const name = String(json(body).Name ?? "").replace(/^\//, "");
    const requests = [{ action: `ssm:${operation}`, resource: arn(c, "ssm", `parameter/${name}`) }];
    const key = keyArnOf(name);
    if (key && json(body).WithDecryption) requests.push({ action: "kms:Decrypt", resource: key });
    return requests;
  };
}

/** The @connections API: ManageConnections on {apiId}/{stage}/{METHOD}/@connections/{id}. */
export function connectionsRequests(c: ArnContext, apiId: string): Describe {
  return ({ method, path }) => {
    const match = /^\/([^/]+)\/@connections\/([^/?]+)/.exec(path);
    if (!match) return [{ action: "execute-api:Invoke", resource: arn(c, "execute-api", `${apiId}/*`) }];
    return [{ action: "execute-api:ManageConnections", resource: arn(c, "execute-api", `${apiId}/${match[1]}/${method}/@connections/${match[2]}`) }];
  };
}

/** EventBridge PutEvents: IAM authorizes events:PutEvents once per bus its entries name (by name or ARN; none: the default bus). */
export function eventsRequests(c: ArnContext): Describe {
  return ({ target, body }) => {
    const operation = target.split(".").pop() ?? "";
    const entries = (json(body).Entries as { EventBusName?: string }[] | undefined) ?? [];
    const buses = new Set(entries.map((e) => (e.EventBusName?.startsWith("arn:") ? e.EventBusName : arn(c, "events", `event-bus/${e.EventBusName || "default"}`))));
    return [...buses].map((resource) => ({ action: `events:${operation}`, resource }));
  };
}
