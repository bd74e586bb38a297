import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { keepConsoleLog } from "./test/support/consoleFilter.mts";

/**
 * The files that read what test/support/background.ts starts at the beginning of a run (shared
 * Pulumi program runs, the README quick start) go last, in this order, so that work has the
 * rest of the suite's time to finish on the core vitest leaves idle.
 */
const LATE = ["iamSimulation.test.ts", "componentParts.test.ts", "component.test.ts", "pulumiProgram.test.ts", "readme.test.ts"];
const lateIndex = (spec: TestSpecification) => LATE.indexOf(spec.moduleId.split("/").pop()!);

class LateLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((spec) => lateIndex(spec) < 0), ...sorted.filter((spec) => lateIndex(spec) >= 0).sort((a, b) => lateIndex(a) - lateIndex(b))];
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Node's require of .ts files, for the entry points the local hub loads by convention.
    setupFiles: ["./test/support/nodeRequireTs.ts"],
    // One temp folder per run (removed at the end, leaks included), dist/ built once if stale,
    // and the late files' work started in the background.
    globalSetup: ["./test/support/globalSetup.ts"],
    sequence: { sequencer: LateLast },
    reporters: ["default", "./test/support/summaryReporter.mts"],
    // Node 20 here, Node 22 on Lambda: the SDK's reminder about that is noise in test output.
    // Handlers log at warn in tests (tests that read logs capture every level themselves).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", VITE_CONFIG_NATIVE_IGNORE_WARNING: "true", LOG_LEVEL: "warn" },
    onConsoleLog: (log) => keepConsoleLog(log),
  },
});
