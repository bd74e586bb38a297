/**
 * The browser client's modules for the local hub's pages (the demo, the tests in Chromium):
 * `/client.mjs`, the entry pages import, redirects to `/client/index.mjs`, so the relative
 * imports between the modules (`./connection.mjs`, ...) resolve under `/client/`, where each
 * `client/<name>.mjs` is served. Plain files, no build step, from the source tree or from the
 * installed package. Public code: nothing here needs the demo endpoints' Host/Origin checks.
 */
import * as fs from "fs";
import type * as http from "http";
import * as path from "path";

/** The client folder beside the local hub (local/ in the source tree, dist/local/ once built). */
function clientDir(): string | undefined {
  const candidates = [path.join(__dirname, "../client"), path.join(__dirname, "../../client")];
  return candidates.find((dir) => fs.existsSync(path.join(dir, "index.mjs")));
}

/** True when the request was a client module's (answered here). */
export function handleClientModule(request: http.IncomingMessage, response: http.ServerResponse): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const pathname = (request.url ?? "").split("?")[0];
  if (pathname === "/client.mjs") {
    response.writeHead(302, { location: "/client/index.mjs", "cache-control": "no-store" });
    response.end();
    return true;
  }
  const name = /^\/client\/([a-z]+)\.mjs$/.exec(pathname)?.[1];
  if (name === undefined) return false;
  const dir = clientDir();
  const file = dir === undefined ? undefined : path.join(dir, `${name}.mjs`);
  if (file === undefined || !fs.existsSync(file)) {
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ message: `no client module ${name}.mjs` }));
    return true;
  }
  response.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
  response.end(request.method === "HEAD" ? undefined : fs.readFileSync(file, "utf8"));
  return true;
}
