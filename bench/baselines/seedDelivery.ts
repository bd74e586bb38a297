/**
 * The seed article's delivery algorithm, re-implemented with SDK v3 as a baseline: Scan the
 * whole connections table with a room filter, then post to every match at once. Fair to
 * it where the article was not: every record of the batch is handled, the Scan follows
 * pagination (the article's did not, and would miss rooms past the first 1 MB), and 410s
 * delete the row. What stays is the algorithm: cost follows the table, posts are unbounded.
 *
 * On today's table (many rooms per connection) a room's members are membership items keyed
 * `{connectionId}#{room}` beside the connection rows, so the Scan's matches are mapped back to
 * connection ids, as the hub's own Query does. Posts are signed with the hub's dev
 * credentials: the local @connections API refuses any other signature, as AWS does.
 */
import type { SQSEvent, SQSBatchResponse } from "aws-lambda";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import type { Credentials } from "../../core/aws";
import type { FanoutDeps } from "../../core/fanout";
import { isGone } from "../../core/fanout";
import { connectionIdOf } from "../../core/rooms";
import { deleteConnection } from "../../core/tables";

export function createSeedDeliverHandler(deps: FanoutDeps, config: { managementEndpoint: string; credentials?: Credentials }): (event: SQSEvent) => Promise<SQSBatchResponse> {
  let management: ApiGatewayManagementApiClient | undefined;
  return async (event) => {
    // The SDK's default client, as the article's code had: default agent, default retries.
    management ??= new ApiGatewayManagementApiClient({
      endpoint: config.managementEndpoint,
      region: "us-east-1",
      credentials: config.credentials ?? { accessKeyId: "local", secretAccessKey: "local" },
    });
    const client = management;
    for (const record of event.Records) {
      const body = JSON.parse(record.body) as { room_id: string | number; user_id?: string; data: unknown };
      const roomId = String(body.room_id);
      /** Connection id → the item that named it (deleted on a 410, as the article deleted its row). */
      const connections = new Map<string, string>();
      let itemsRead = 0;
      let capacityUnits = 0;
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const page = await deps.db.send(
          new ScanCommand({
            TableName: deps.connectionsTable,
            FilterExpression: "room_id = :room",
            ExpressionAttributeValues: { ":room": { S: roomId } },
            ProjectionExpression: "connection_id, user_id",
            ExclusiveStartKey: startKey,
            ReturnConsumedCapacity: "TOTAL",
          }),
        );
        itemsRead += page.ScannedCount ?? 0;
        capacityUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
        for (const item of page.Items ?? []) if (item.connection_id?.S) connections.set(connectionIdOf(item.connection_id.S), item.connection_id.S);
        startKey = page.LastEvaluatedKey;
      } while (startKey);

      const frame = Buffer.from(JSON.stringify({ id: record.messageId, room_id: roomId, user_id: body.user_id ?? null, data: body.data }));
      await Promise.all(
        [...connections].map(async ([connectionId, itemKey]) => {
          try {
            await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: frame }));
          } catch (err) {
            if (isGone(err)) await deleteConnection(deps.db, deps.connectionsTable, itemKey);
            else throw err;
          }
        }),
      );
      deps.log.info("delivered", { id: record.messageId, room_id: roomId, delivered: connections.size, items_read: itemsRead, capacity_units: capacityUnits });
    }
    return { batchItemFailures: [] };
  };
}
