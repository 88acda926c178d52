/**
 * systemd's notification protocol (sd_notify(3)), the pure part: where to send (`$NOTIFY_SOCKET`), whether and
 * how often to ping the watchdog (`$WATCHDOG_USEC`, `$WATCHDOG_PID`), and the datagrams themselves
 * (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`, newline-separated assignments in one datagram).
 *
 * Implemented here rather than through libsystemd: the protocol is one datagram to an AF_UNIX socket, and
 * joold then needs no library a router might lack. Parsing follows libsystemd's `sd_notify` and
 * `sd_watchdog_enabled`: a path starting with "/" or an abstract name starting with "@"; anything else (a
 * relative path, `vsock:` of newer systemd) is refused with a warning and notification stays off. The socket
 * itself is `ffi/unix_datagram.ts`; `lib/systemd/notifier.ts` sends through it.
 * @module
 */

/** sizeof(sun_path) in struct sockaddr_un on Linux. */
export const SUN_PATH_BYTES = 108;

/** Where and how to notify systemd, read from the environment systemd gave the process. */
export interface NotifySettings {
  /** `$NOTIFY_SOCKET` as given, for log lines. */
  readonly socket: string;
  /**
   * The bytes of `sun_path` to send to, exactly as many as the address length counts: a filesystem path with
   * its terminating NUL; an abstract name with its leading NUL (for the "@") and no terminating NUL.
   */
  readonly sunPath: Uint8Array<ArrayBuffer>;
  /** How often to send `WATCHDOG=1` (half of `$WATCHDOG_USEC`), or undefined when no watchdog is asked for. */
  readonly watchdogIntervalMs: number | undefined;
  /** Environment values that were ignored, one line each, for the log. */
  readonly warnings: readonly string[];
}

/** What {@link notifySettings} makes of the environment: off, on, or refused with a reason. */
export type NotifyEnvironment =
  | { readonly kind: "off" }
  | { readonly kind: "invalid"; readonly reason: string }
  | { readonly kind: "on"; readonly settings: NotifySettings };

/** Encodes `$NOTIFY_SOCKET` as `sun_path` bytes; a string is the reason it cannot be one. */
export function notifySunPath(socket: string): Uint8Array<ArrayBuffer> | string {
  const quoted = JSON.stringify(socket);
  if (socket.startsWith("@")) {
    const name = new TextEncoder().encode(socket.slice(1));
    if (name.length === 0) return `NOTIFY_SOCKET=${quoted}: an abstract socket needs a name after "@"`;
    if (1 + name.length > SUN_PATH_BYTES) {
      return `NOTIFY_SOCKET=${quoted}: longer than ${SUN_PATH_BYTES - 1} bytes`;
    }
    const out = new Uint8Array(1 + name.length);
    out.set(name, 1); // out[0] = 0: the Linux abstract namespace
    return out;
  }
  if (!socket.startsWith("/")) {
    return `NOTIFY_SOCKET=${quoted}: neither an absolute path nor an abstract socket ("@name"); not notifying`;
  }
  if (socket.includes("\0")) return `NOTIFY_SOCKET=${quoted}: contains a NUL byte`;
  const path = new TextEncoder().encode(socket);
  if (path.length + 1 > SUN_PATH_BYTES) {
    return `NOTIFY_SOCKET=${quoted}: longer than ${SUN_PATH_BYTES - 1} bytes`;
  }
  const out = new Uint8Array(path.length + 1); // the terminating NUL stays 0
  out.set(path);
  return out;
}

/**
 * The watchdog ping interval in ms (half of `$WATCHDOG_USEC`, at least 1) or undefined when there is no
 * watchdog for this process; a string is why a value was ignored (the watchdog is then off).
 * `$WATCHDOG_PID` unset, or equal to `pid`, means the watchdog is ours.
 */
export function watchdogInterval(
  usec: string | undefined,
  watchdogPid: string | undefined,
  pid: number,
): number | undefined | string {
  if (usec === undefined) return undefined;
  if (!/^[0-9]+$/.test(usec) || Number(usec) === 0 || !Number.isSafeInteger(Number(usec))) {
    return `WATCHDOG_USEC=${
      JSON.stringify(usec)
    } is not a positive number of microseconds; no watchdog pings`;
  }
  if (watchdogPid !== undefined) {
    if (!/^[0-9]+$/.test(watchdogPid) || Number(watchdogPid) === 0) {
      return `WATCHDOG_PID=${JSON.stringify(watchdogPid)} is not a process id; no watchdog pings`;
    }
    if (Number(watchdogPid) !== pid) return undefined; // the watchdog is another process's (sd_watchdog_enabled)
  }
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/**
 * Reads the notification settings from `env` (a lookup of environment variables) for process `pid`.
 * `$NOTIFY_SOCKET` unset or empty: "off", and nothing at all is to be done.
 */
export function notifySettings(env: (name: string) => string | undefined, pid: number): NotifyEnvironment {
  const socket = env("NOTIFY_SOCKET");
  if (socket === undefined || socket === "") return { kind: "off" };
  const sunPath = notifySunPath(socket);
  if (typeof sunPath === "string") return { kind: "invalid", reason: sunPath };
  const interval = watchdogInterval(env("WATCHDOG_USEC"), env("WATCHDOG_PID"), pid);
  return {
    kind: "on",
    settings: {
      socket,
      sunPath,
      watchdogIntervalMs: typeof interval === "number" ? interval : undefined,
      warnings: typeof interval === "string" ? [interval] : [],
    },
  };
}

/** A status text as one `STATUS=` value: one line, no control characters, at most 200 characters. */
export function statusLine(text: string): string {
  // deno-lint-ignore no-control-regex
  const oneLine = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 199)}…` : oneLine;
}

/** The notification datagram of `assignments` (`NAME=value` each), newline-separated as sd_notify expects. */
function datagram(assignments: string[]): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(assignments.join("\n"));
}

/** `READY=1` with the status shown from then on. */
export function readyMessage(status: string): Uint8Array<ArrayBuffer> {
  return datagram(["READY=1", `STATUS=${statusLine(status)}`]);
}

/** A status update alone. */
export function statusMessage(status: string): Uint8Array<ArrayBuffer> {
  return datagram([`STATUS=${statusLine(status)}`]);
}

/** A watchdog ping carrying a fresh status, or the status alone when `ping` is false (no watchdog). */
export function tickMessage(ping: boolean, status: string): Uint8Array<ArrayBuffer> {
  return datagram([...(ping ? ["WATCHDOG=1"] : []), `STATUS=${statusLine(status)}`]);
}

/** `STOPPING=1` with the status shown while the daemon closes. */
export function stoppingMessage(status: string): Uint8Array<ArrayBuffer> {
  return datagram(["STOPPING=1", `STATUS=${statusLine(status)}`]);
}

/** What the running status says: the instance and group it relays, and what went through. */
export interface RunningState {
  /** The Jool instance. */
  readonly instance: string;
  /** The multicast group as logged (`address%scope`). */
  readonly group: string;
  /** The group's UDP port. */
  readonly port: number;
  /** Datagrams sent to the group (kernel batches relayed to the peers). */
  readonly sentToGroup: number;
  /** JOOLD_ADDs sent to the kernel (peer batches relayed to Jool). */
  readonly sentToKernel: number;
  /** Everything dropped, all reasons together. */
  readonly dropped: number;
}

/** The running status text, e.g. `relaying instance "default" ⇄ 233.252.0.64 port 6400: 3 batches to …`. */
export function runningStatus(state: RunningState): string {
  return `relaying instance "${state.instance}" ⇄ group ${state.group} port ${state.port}: ` +
    `${state.sentToGroup} batches to the group, ${state.sentToKernel} to the kernel, ${state.dropped} dropped`;
}
