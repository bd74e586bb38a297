/**
 * Vitest setup: lets Node's own `require` load .ts files, as `npm run dev` (ts-node) does.
 * The local hub, started in-process by tests, loads each handler's entry point by convention
 * with `require` (handlers/entryPoints.ts); vitest's transform only covers `import`.
 * Transpile-only: `tsc --noEmit` checks types in npm test. Registered once per process.
 */
import { register } from "ts-node";

const REGISTERED = Symbol.for("ts-node.register.instance");
if (!(process as unknown as Record<symbol, unknown>)[REGISTERED]) register({ transpileOnly: true });
