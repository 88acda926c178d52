/**
 * Logger interface shared by every component. The implementation (stderr or syslog) lives in
 * `lib/sink_logger.ts`; components only see this interface so tests can capture lines.
 * @module
 */

/** Severity, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** What components log through. Messages are single lines. */
export interface Logger {
  /** Something failed. */
  error(message: string): void;
  /** Something is wrong but the daemon carries on. */
  warn(message: string): void;
  /** A notable event (start, stop, configuration). */
  info(message: string): void;
  /** Detail for troubleshooting. */
  debug(message: string): void;
}

/** A logger that records lines in memory, for tests. */
export class MemoryLogger implements Logger {
  /** Every line logged, as `level: message`. */
  readonly lines: string[] = [];
  /** Records `error: message`. */
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  /** Records `warn: message`. */
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  /** Records `info: message`. */
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  /** Records `debug: message`. */
  debug(message: string): void {
    this.lines.push(`debug: ${message}`);
  }
}
