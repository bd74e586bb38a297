/**
 * Structured JSON logs, one object per line. Callers pass fields, never whole events:
 * events carry the connect token in their query string.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function configuredLevel(): LogLevel {
  const level = (process.env.LOG_LEVEL ?? process.env.AWS_LAMBDA_LOG_LEVEL ?? "info").toLowerCase();
  return level in LEVEL_ORDER ? (level as LogLevel) : "info";
}

/** Errors become their name and message; the stack only at debug, to keep logs readable. */
export function describeError(err: unknown): LogFields {
  if (err instanceof Error) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return { error: err.name, error_message: err.message, ...(status ? { http_status: status } : {}) };
  }
  return { error: String(err) };
}

export type LogSink = (line: string, level: LogLevel) => void;

// console.<level> so Lambda's JSON log format files each line under the right level.
const consoleSink: LogSink = (line, level) => console[level](line);

export function createLogger(base: LogFields = {}, sink: LogSink = consoleSink, level: LogLevel = configuredLevel()): Logger {
  const min = LEVEL_ORDER[level];
  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    if (LEVEL_ORDER[level] < min) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level, message, ...base, ...fields }), level);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }, sink, level),
  };
}
