/** A logger whose lines a test can read back, to check what was (and was not) logged. */
import { createLogger, type Logger } from "../../core/log";

export function capturingLogger(): { log: Logger; lines: string[]; text(): string } {
  const lines: string[] = [];
  // Every level, whatever LOG_LEVEL the suite runs at: tests read back what would be logged.
  return { log: createLogger({}, (line) => lines.push(line), "debug"), lines, text: () => lines.join("\n") };
}
