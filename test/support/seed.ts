/** Rows in the tables: filled quickly for tests and bench/, and read back by room. */
import { BatchWriteItemCommand, DynamoDBClient, type WriteRequest } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../../core/aws";
import { mapWithConcurrency } from "../../core/fanout";
import { roomPages, type RoomPage } from "../../core/tables";

type RoomConnection = RoomPage["connections"][number];

/** Fills the connections table quickly (BatchWriteItem, 25 rows a call, several calls at once). */
export async function seedConnections(
  db: DynamoDBClient,
  table: string,
  rows: { connectionId: string; roomId: string; userId: string }[],
  options: { ttlSeconds?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<void> {
  const expiresAt = String(Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 3600));
  let done = 0;
  const batches: WriteRequest[][] = [];
  for (let i = 0; i < rows.length; i += 25) {
    batches.push(
      rows.slice(i, i + 25).map((row) => ({
        PutRequest: {
          Item: {
            connection_id: { S: row.connectionId },
            room_id: { S: row.roomId },
            user_id: { S: row.userId },
            connected_at: { N: String(Date.now() - 60_000) }, // opened a minute ago, past the handshake grace
            expires_at: { N: expiresAt },
          },
        },
      })),
    );
  }
  await mapWithConcurrency(batches, 8, async (requests) => {
    let pending: WriteRequest[] | undefined = requests;
    while (pending && pending.length > 0) {
      const result: { UnprocessedItems?: Record<string, WriteRequest[]> } = await db.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
      pending = result.UnprocessedItems?.[table];
    }
    done += requests.length;
    options.onProgress?.(done, rows.length);
  });
}

/** Every connection row of a room, through the room index as the handlers read it. */
export async function roomRows(dynamodbEndpoint: string, table: string, roomId: string): Promise<RoomConnection[]> {
  const rows: RoomConnection[] = [];
  for await (const page of roomPages(dynamoClient({ endpoint: dynamodbEndpoint }), table, roomId)) rows.push(...page.connections);
  return rows;
}
