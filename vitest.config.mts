import { defineConfig } from "vitest/config";
import { keepConsoleLog } from "./test/support/consoleFilter.mts";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Node's require of .ts files, for the entry points the local hub loads by convention.
    setupFiles: ["./test/support/nodeRequireTs.ts"],
    // One temp folder per run (removed at the end, leaks included) and dist/ built once if stale.
    globalSetup: ["./test/support/globalSetup.ts"],
    reporters: ["default", "./test/support/summaryReporter.mts"],
    // Node 20 here, Node 22 on Lambda: the SDK's reminder about that is noise in test output.
    // Handlers log at warn in tests (tests that read logs capture every level themselves).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", VITE_CONFIG_NATIVE_IGNORE_WARNING: "true", LOG_LEVEL: "warn" },
    onConsoleLog: (log) => keepConsoleLog(log),
  },
});
