/**
 * `occupancy` route (docs/protocol.md#presence), deployed only with presence on:
 * `{"action":"occupancy","room_id":"x"}` answers `hub.occupancy` `{room_id, connections, users}`,
 * one GetItem of the room's counter whatever its size. The connection must be subscribed.
 */
import { controlFrame } from "../core/messages";
import { keepAliveOf, readOccupancy, type PresenceDeps } from "../core/presence";
import { lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";
import { createRoomReadHandler } from "./presence";

export function createOccupancyHandler(deps: PresenceDeps) {
  return createRoomReadHandler(deps, "occupancy", async (request) => {
    const counts = await readOccupancy(deps.db, deps.presence.presenceTable, request.roomId);
    return controlFrame("hub.occupancy", { room_id: request.roomId, ...counts, ...keepAliveOf(deps) });
  });
}

export function occupancyFromEnvironment(source: HandlerSource = lambdaSource("occupancy")) {
  const deps = presenceFrom(source);
  if (!deps) throw new Error("the occupancy route needs PRESENCE_TABLE");
  return createOccupancyHandler(deps);
}
