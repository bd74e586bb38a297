/** A logger whose lines a test can read back, to check what was (and was not) logged. */
import { createLogger, type Logger } from "../../core/log";

export function capturingLogger(): { log: Logger; lines: string[]; text(): string } {
  const lines: string[] = [];
  return { log: createLogger({}, (line) => lines.push(line)), lines, text: () => lines.join("\n") };
}
