/**
 * Prints, after vitest's own report, the summary line each suite logged ("SUMMARY ..."),
 * then one plain closing line: "N passed, N failed, N skipped".
 */
import type { UserConsoleLog } from "vitest";
import type { Reporter, TestModule } from "vitest/node";

/** Counted by consoleFilter.mts (loaded with vitest's config, so read through globalThis). */
function hiddenConsoleLines(): number {
  const state = (globalThis as Record<string, unknown>).__notificationHubConsoleFilter as { hidden: number } | undefined;
  return state?.hidden ?? 0;
}

export default class SummaryReporter implements Reporter {
  private readonly summaries: string[] = [];

  onUserConsoleLog(log: UserConsoleLog): void {
    for (const line of log.content.split("\n")) if (line.startsWith("SUMMARY ")) this.summaries.push(line.slice(8));
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") counts.passed++;
        else if (state === "failed") counts.failed++;
        else counts.skipped++;
      }
    }
    const hidden = hiddenConsoleLines();
    const repeats = hidden ? [`(${hidden} repeated console line(s) hidden; each distinct line shows at most 3 times)`] : [];
    const out = ["", "Suite summaries:", ...this.summaries.sort().map((s) => `  ${s}`), "", ...repeats, `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`, ""];
    process.stdout.write(out.join("\n"));
  }
}
