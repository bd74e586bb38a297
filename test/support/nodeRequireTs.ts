/**
 * Vitest setup: lets Node's own `require` load .ts files, as `npm run dev` (ts-node) does.
 * The local hub, started in-process by tests, loads each handler's entry point by convention
 * with `require` (handlers/entryPoints.ts); vitest's transform only covers `import`.
 * Transpile-only: `tsc --noEmit` checks types in npm test. Registered once per process.
 *
 * Registering loads TypeScript's compiler, a few hundred ms of CPU in every test file's
 * process, and many files never `require` a .ts file: ts-node is registered at the first one.
 */
import { createRequire } from "module";
import { register } from "ts-node";

const REGISTERED = Symbol.for("ts-node.register.instance");
const extensions = createRequire(__filename).extensions;
if (!(process as unknown as Record<symbol, unknown>)[REGISTERED] && !extensions[".ts"]) {
  // Also what makes Node's resolution try ".ts" for a path given without its extension.
  extensions[".ts"] = (module, filename) => {
    delete extensions[".ts"];
    register({ transpileOnly: true }); // puts its own ".ts" loader in place (on top of ".js")
    extensions[".ts"]!(module, filename);
  };
}
