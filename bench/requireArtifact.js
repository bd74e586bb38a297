// Times a cold `require` of a serialized Lambda (__index.js) in this fresh process: the
// closest local proxy for a cold start's init phase. Prints milliseconds.
const path = require("path");
const started = process.hrtime.bigint();
require(path.join(process.argv[2], "__index.js"));
process.stdout.write(String(Number(process.hrtime.bigint() - started) / 1e6) + "\n");
