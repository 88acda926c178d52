/**
 * A logger that records lines in memory: what tests read back. Lives here, not in lib/, so the shipped program
 * carries no test double.
 * @module
 */
import type { Logger } from "../../lib/logger.ts";

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
