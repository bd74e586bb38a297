/**
 * Real stand-ins for AWS in tests: dynalite speaks DynamoDB's wire protocol, fauxqs speaks
 * SQS's. Tests talk to them with the real @aws-sdk clients.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../../core/aws";
import { loadDynalite } from "../../local/dynalite";
import { loadFauxqs } from "../../local/fauxqs";
import { ensureTables } from "../../local";



export interface Dynamo {
  endpoint: string;
  client: DynamoDBClient;
  connectionsTable: string;
  authTable: string;
  stop(): Promise<void>;
}

let tableCounter = 0;

export async function startDynamo(tableNames?: { connectionsTable: string; authTable: string; streamsTable?: string; presenceTable?: string; budgetTable?: string }): Promise<Dynamo> {
  const dynalite = loadDynalite();
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${server.address().port}`;
  const client = dynamoClient({ endpoint, region: "us-east-1" });
  const suffix = `${process.pid}-${++tableCounter}`;
  const names = tableNames ?? { connectionsTable: `connections-${suffix}`, authTable: `auth-${suffix}` };
  await ensureTables(client, { connections: names.connectionsTable, auth: names.authTable, streams: tableNames?.streamsTable, presence: tableNames?.presenceTable, budget: tableNames?.budgetTable });
  return {
    endpoint,
    client,
    ...names,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Sqs {
  endpoint: string;
  createQueue(name: string, attributes?: Record<string, string>): { queueUrl: string; queueArn: string };
  stop(): Promise<void>;
}

export async function startSqs(): Promise<Sqs> {
  // With SQS's own character rule (local/fauxqs.ts).
  const { startFauxqs } = await loadFauxqs();
  const server = await startFauxqs({ port: 0, logger: false, host: "localhost" });
  return {
    endpoint: server.address,
    createQueue: (name, attributes) => server.createQueue(name, attributes ? { attributes } : undefined),
    stop: () => server.stop(),
  };
}
