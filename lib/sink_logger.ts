/**
 * Logger implementations: stderr (default) and syslog (`--syslog`, ident `joold`, facility daemon, like
 * upstream). A small module instead of a logging library: joold needs four levels, one line per event and
 * RFC 3164 datagrams to /dev/log, which no npm logger does without extra transports; fewer dependencies also
 * keep the one-file build small.
 * @module
 */
import { errorMessage } from "./errors.ts";
import type { Logger, LogLevel } from "./logger.ts";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
/** syslog severities: err 3, warning 4, info 6, debug 7. */
const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
/** LOG_DAEMON facility (3 << 3). */
const FACILITY_DAEMON = 3 * 8;

/** Where lines go. */
export type LineSink = (level: LogLevel, line: string) => void;

/** A level-filtered logger writing through a sink. */
export class SinkLogger implements Logger {
  /**
   * A logger that writes lines at `threshold` or more severe through `sink`.
   * @param threshold the least severe level written
   * @param sink where the lines go
   */
  constructor(private readonly threshold: LogLevel, private readonly sink: LineSink) {}
  #emit(level: LogLevel, message: string): void {
    if (RANK[level] <= RANK[this.threshold]) this.sink(level, message.replace(/[\r\n]+/g, " "));
  }
  /** Writes an error line. */
  error(message: string): void {
    this.#emit("error", message);
  }
  /** Writes a warning line if the threshold allows it. */
  warn(message: string): void {
    this.#emit("warn", message);
  }
  /** Writes an info line if the threshold allows it. */
  info(message: string): void {
    this.#emit("info", message);
  }
  /** Writes a debug line if the threshold allows it. */
  debug(message: string): void {
    this.#emit("debug", message);
  }
}

const encoder = new TextEncoder();

/** Lines on stderr: `2026-11-24T09:00:00.000Z joold info: message`. */
export function stderrSink(): LineSink {
  return (level, line) => {
    Deno.stderr.writeSync(encoder.encode(`${new Date().toISOString()} joold ${level}: ${line}\n`));
  };
}

/** Formats one RFC 3164 syslog datagram as the local syslog socket expects it. */
export function syslogDatagram(level: LogLevel, line: string, now = new Date()): Uint8Array {
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${months[now.getMonth()]} ${String(now.getDate()).padStart(2, " ")} ${pad(now.getHours())}:${
    pad(now.getMinutes())
  }:${pad(now.getSeconds())}`;
  return encoder.encode(`<${FACILITY_DAEMON + SEVERITY[level]}>${stamp} joold: ${line}`);
}

/**
 * Sends lines to the syslog socket (default /dev/log). Falls back to stderr for a line that cannot be sent,
 * so nothing is lost silently. Needs --unstable-net.
 */
export function syslogSink(path = "/dev/log"): LineSink {
  const fallback = stderrSink();
  let socket: Deno.DatagramConn | undefined;
  try {
    // An unbound unix datagram socket: what libc's syslog() uses too.
    socket = Deno.listenDatagram(
      { transport: "unixpacket" } as Deno.UnixListenOptions & { transport: "unixpacket" },
    );
  } catch (error) {
    fallback(
      "warn",
      `cannot open a syslog socket (${errorMessage(error)}); logging to stderr`,
    );
  }
  return (level, line) => {
    if (!socket) {
      fallback(level, line);
      return;
    }
    socket.send(syslogDatagram(level, line), { transport: "unixpacket", path }).catch((error) => {
      fallback(
        "warn",
        `syslog ${path} unreachable (${errorMessage(error)}); line follows`,
      );
      fallback(level, line);
    });
  };
}
