/**
 * Tells systemd how joold is doing (sd_notify(3), for `Type=notify` units): `READY=1` once the kernel channel
 * and the multicast socket are open, `STATUS=` lines for `systemctl status` (the running counts, refreshed with
 * each watchdog ping; the one-line error of a failed start), `WATCHDOG=1` every half of `$WATCHDOG_USEC`, and
 * `STOPPING=1` at shutdown. The messages and the environment are `lib/systemd/notify_protocol.ts`; the socket
 * is `ffi/unix_datagram.ts`.
 *
 * Without `$NOTIFY_SOCKET` nothing at all happens: no socket, no timer. Notification is a courtesy to the
 * service manager, never a reason to stop relaying: a failed send is logged (at most once a minute per cause)
 * and the daemon carries on.
 * @module
 */
import { readEnvironment, UnixDatagramError, UnixDatagramSender } from "../../ffi/unix_datagram.ts";
import { errorMessage, JooldError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { LogRateLimiter } from "../rate_limit.ts";
import {
  type NotifySettings,
  notifySettings,
  readyMessage,
  statusMessage,
  stoppingMessage,
  tickMessage,
} from "./notify_protocol.ts";

/** How often the running status is refreshed when no watchdog asks for more often. */
const STATUS_REFRESH_MS = 10_000;
/** At most one log line per failure cause in this interval. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/** The daemon's link to systemd; every method does nothing when systemd did not ask for notifications. */
export class SystemdNotifier {
  readonly #settings: NotifySettings | undefined;
  readonly #sender: UnixDatagramSender | undefined;
  readonly #log: Logger;
  readonly #limiter = new LogRateLimiter(FAILURE_LOG_INTERVAL_MS);
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    settings: NotifySettings | undefined,
    sender: UnixDatagramSender | undefined,
    log: Logger,
  ) {
    this.#settings = settings;
    this.#sender = sender;
    this.#log = log;
  }

  /**
   * Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (through `env`, libc's getenv by default) for
   * process `pid` and opens the socket when there is somewhere to notify. Never throws: a bad environment or a
   * socket that cannot be opened is one warning, and the notifier stays silent.
   */
  static fromEnvironment(
    log: Logger,
    env: (name: string) => string | undefined = readEnvironment,
    pid: number = Deno.pid,
  ): SystemdNotifier {
    const found = notifySettings(env, pid);
    if (found.kind === "off") return new SystemdNotifier(undefined, undefined, log);
    if (found.kind === "invalid") {
      log.warn(`not notifying systemd: ${found.reason}`);
      return new SystemdNotifier(undefined, undefined, log);
    }
    for (const warning of found.settings.warnings) log.warn(warning);
    let sender: UnixDatagramSender;
    try {
      sender = UnixDatagramSender.open();
    } catch (error) {
      if (!(error instanceof UnixDatagramError)) throw error;
      log.warn(`not notifying systemd: ${error.message}`);
      return new SystemdNotifier(undefined, undefined, log);
    }
    const watchdog = found.settings.watchdogIntervalMs;
    log.debug(
      `notifying systemd at ${found.settings.socket}` +
        (watchdog === undefined ? "" : `, watchdog ping every ${watchdog} ms`),
    );
    return new SystemdNotifier(found.settings, sender, log);
  }

  /** Whether systemd asked for notifications (and the socket opened). */
  get enabled(): boolean {
    return this.#sender !== undefined;
  }

  /**
   * `READY=1` with `status()`'s text, then a refresh of it, with a watchdog ping when systemd set one, every
   * half watchdog period (at most {@link STATUS_REFRESH_MS}). `status` must be cheap: it runs on each tick.
   */
  ready(status: () => string): void {
    if (!this.#settings) return;
    this.#send("ready", readyMessage(status()));
    const watchdog = this.#settings.watchdogIntervalMs;
    const period = Math.min(watchdog ?? STATUS_REFRESH_MS, STATUS_REFRESH_MS);
    const timer = setInterval(
      () => this.#send("tick", tickMessage(watchdog !== undefined, status())),
      period,
    );
    // The relay, not this timer, keeps the daemon alive: the timer alone must not hold the process up.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** `STOPPING=1`: the daemon is closing on a signal. Stops the pings. */
  stopping(): void {
    if (!this.#settings) return;
    this.#stopTimer();
    this.#send("stopping", stoppingMessage("stopping: signal received, closing"));
  }

  /** `STATUS=` with the error the daemon is about to exit with (its first line, and its exit status if known). */
  failed(error: unknown): void {
    if (!this.#settings) return;
    this.#stopTimer();
    const line = errorMessage(error).split("\n")[0];
    const exit = error instanceof JooldError ? ` (exit status ${error.exitCode})` : "";
    this.#send("failed", statusMessage(`failed${exit}: ${line}`));
  }

  /** Stops the timer and closes the socket; nothing is sent after this. */
  close(): void {
    this.#stopTimer();
    this.#sender?.close();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #send(what: string, message: Uint8Array): void {
    try {
      this.#sender!.send(this.#settings!.sunPath, message);
    } catch (error) {
      if (!(error instanceof UnixDatagramError)) throw error;
      const line = this.#limiter.line(
        `${error.step} ${error.errno}`,
        `cannot notify systemd (${what}) at ${this.#settings!.socket}: ${error.message}`,
      );
      if (line) this.#log.warn(line);
    }
  }
}
