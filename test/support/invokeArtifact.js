// Loads a serialized Lambda (__index.js and its packages) in a fresh Node process, the way
// the Lambda runtime does, invokes it once and prints the result on the last line.
// Usage: node invokeArtifact.js <dir> <event-json-file>
const fs = require("fs");
const path = require("path");

async function main() {
  const [dir, eventFile] = process.argv.slice(2);
  const started = process.hrtime.bigint();
  const mod = require(path.join(dir, "__index.js"));
  const requireMs = Number(process.hrtime.bigint() - started) / 1e6;
  const event = JSON.parse(fs.readFileSync(eventFile, "utf8"));
  let result;
  try {
    result = { ok: true, value: await mod.handler(event, { awsRequestId: "local", functionName: "artifact" }) };
  } catch (err) {
    result = { ok: false, error: err && err.message };
  }
  process.stdout.write("\n@@RESULT " + JSON.stringify({ ...result, requireMs }) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
