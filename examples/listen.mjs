// Prints each notification of a room as a browser gets it, from the local hub that
// `npm run dev` started in this project (found from any of its folders):
//   TOKEN=$(npx notification-hub token --user alice --room lobby)
//   node examples/listen.mjs "$TOKEN"
import { WebSocket } from "ws";
import { findLocalHub, LocalHubNotFound } from "notification-hub/local";

const token = process.argv[2];
if (!token) {
  console.error('usage: node examples/listen.mjs "$TOKEN"   (TOKEN=$(npx notification-hub token --user alice --room lobby))');
  process.exit(2);
}
let hub;
try {
  hub = findLocalHub();
} catch (err) {
  if (!(err instanceof LocalHubNotFound)) throw err;
  console.error(`listen.mjs: ${err.message}`);
  process.exit(2);
}
const ws = new WebSocket(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`);
ws.on("open", () => console.log("connected; each notification prints as one JSON line (Ctrl-C stops)"));
ws.on("message", (data) => console.log(data.toString()));
ws.on("unexpected-response", (_request, response) => {
  console.error(`the hub refused the token (HTTP ${response.statusCode}); issue a new one`);
  process.exit(1);
});
ws.on("close", (code, reason) => {
  console.log(`closed by the hub: ${code} ${reason.toString()}`);
  process.exit(code === 1000 ? 0 : 1);
});
