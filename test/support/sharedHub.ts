/**
 * One local hub for a whole test file (the suite's time budget allows no more), with a
 * DynamoDB client on its tables and the WebSocket clients the tests open, all closed after
 * the file. Call at the top level of a test file; read the fields inside tests.
 */
import { afterAll, beforeAll } from "vitest";
import { dynamoClient } from "../../core/aws";
import type { LocalHubOptions } from "../../local";
import { startTestHub, type TestHub } from "../../local/testing";
import { closeAll, type WsClient } from "./wsClient";

export interface SharedHub {
  hub: TestHub;
  db: ReturnType<typeof dynamoClient>;
  /** Clients to close after the file: push what you open. */
  clients: WsClient[];
}

export function sharedTestHub(options: LocalHubOptions = {}): SharedHub {
  const shared = { clients: [] as WsClient[] } as SharedHub;
  beforeAll(async () => {
    shared.hub = await startTestHub({ port: 0, bcryptCost: 4, queue: { waitTimeSeconds: 1 }, ...options }, {});
    shared.db = dynamoClient({ endpoint: shared.hub.dynamodbEndpoint });
  });
  afterAll(async () => {
    await closeAll(shared.clients.map((c) => c.ws));
    await shared.hub?.stop();
  });
  return shared;
}
