// The app-backend SDK: issue a connect token, publish, revoke. Against the local hub that
// `npm run dev` started in this project, or against a deployed stack when
// NOTIFICATION_HUB_QUEUE_URL and friends are set (the same variables the CLI reads).
import { createNotifier } from "notification-hub/server";
import { findLocalHub, LocalHubNotFound } from "notification-hub/local";

const env = process.env;
function localHub() {
  try {
    return findLocalHub(); // the hub's state file, from any folder of the project
  } catch (err) {
    if (!(err instanceof LocalHubNotFound)) throw err;
    console.error(`app-backend.mjs: ${err.message}`); // no hub running: one line, no stack
    process.exit(2);
  }
}
const hub = createNotifier(
  env.NOTIFICATION_HUB_QUEUE_URL
    ? {
        queueUrl: env.NOTIFICATION_HUB_QUEUE_URL, // the stack's outputs
        authTableName: env.NOTIFICATION_HUB_AUTH_TABLE,
        connectionsTableName: env.NOTIFICATION_HUB_CONNECTIONS_TABLE,
        managementEndpoint: env.NOTIFICATION_HUB_MANAGEMENT_ENDPOINT,
        jwtSecret: env.NOTIFICATION_HUB_JWT_SECRET,
        passcode: env.NOTIFICATION_HUB_PASSCODE, // issuer-only; never given to the hub
        streamsTableName: env.NOTIFICATION_HUB_STREAMS_TABLE, // for history()
      }
    : localHub().notifierOptions, // endpoints and dev secrets of the local hub
);

const token = await hub.issueToken({ userId: "alice", roomId: "lobby", ttlSeconds: 3600 });
console.log(`token for alice in lobby: ${token.slice(0, 20)}…`);

const { messageId } = await hub.publish({ roomId: "lobby", userId: "backup-service", data: { type: "backup.done", data: { job: 7 } } });
console.log(`published message ${messageId} to lobby`);

// Stored before anyone gets it: once history() has it, its posts are under way, so the revoke
// below does not close alice's open sockets before this notification reaches them.
const readsHistory = !env.NOTIFICATION_HUB_QUEUE_URL || env.NOTIFICATION_HUB_STREAMS_TABLE;
for (let tries = 0; readsHistory && tries < 100 && !(await hub.history({ roomId: "lobby", last: 10 })).some((frame) => frame.id === messageId); tries++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const { closedConnections } = await hub.revokeToken({ userId: "alice", roomId: "lobby" }); // old tokens fail, live sockets close
console.log(`revoked alice in lobby; closed ${closedConnections} connection(s)`);
