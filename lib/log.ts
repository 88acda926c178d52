/**
 * Logger interface shared by every component. The implementation (stderr or syslog) lives in
 * `lib/logging.ts`; components only see this interface so tests can capture lines.
 * @module
 */

/** Severity, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** What components log through. Messages are single lines. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** A logger that records lines in memory, for tests. */
export class MemoryLogger implements Logger {
  /** Every line logged, as `level: message`. */
  readonly lines: string[] = [];
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
  debug(message: string): void {
    this.lines.push(`debug: ${message}`);
  }
}
