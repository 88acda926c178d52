/**
 * The daemon's typed errors. Each carries the exit status it ends the process with and a one-line message;
 * `main.ts` prints `joold: <message>` and exits with it, never a stack trace.
 * @module
 */

/** Exit statuses, documented in the README. */
export const EXIT = {
  OK: 0,
  /** Unexpected runtime failure. */
  RUNTIME: 1,
  /** Bad command-line argument. */
  USAGE: 2,
  /** A configuration file is missing, unreadable or invalid. */
  CONFIG: 3,
  /** libnl (or libc) could not be loaded. */
  LIBRARY: 4,
  /** The Jool Generic Netlink family is absent (module not loaded). */
  JOOL_ABSENT: 5,
  /** The instance does not exist in this network namespace. */
  INSTANCE_ABSENT: 6,
  /** Missing privilege (CAP_NET_ADMIN) for the kernel channel. */
  PERMISSION: 7,
  /** The kernel runs a Jool this daemon cannot speak (not 4.1.x, or the 4.2 release candidate). */
  KERNEL_UNSUPPORTED: 8,
  /** The multicast socket could not be set up (bind, join, socket options). */
  NET_SETUP: 9,
  /** The stats socket could not be bound. */
  STATS_SETUP: 10,
} as const;

/** One exit status. */
export type ExitCode = typeof EXIT[keyof typeof EXIT];

/** An error that ends the daemon with a specific exit status and a one-line message. */
export class JooldError extends Error {
  /**
   * An error that ends the process with `exitCode`.
   * @param exitCode status the process exits with
   * @param message one line, no trailing period needed
   */
  constructor(readonly exitCode: ExitCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "JooldError";
  }
}

/**
 * The text of anything thrown: an Error's message, else its string form. The one helper for "cannot X: <why>"
 * lines; callers that need one line take the first (`.split("\n")[0]`).
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
