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
