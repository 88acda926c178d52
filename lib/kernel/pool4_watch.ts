/**
 * The local pool4 as `"check pool4"` sees it: read from the kernel at start-up, then again every
 * {@link POOL4_REREAD_MS}, because Jool announces no pool4 change (no multicast, no event). A failed re-read
 * keeps the last table, counts `POOL4_READ_ERRORS` and logs (rate-limited); a failed first read stops the
 * start-up, since the check would have nothing to check against.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "../errors.ts";
import type { JoolVersion } from "../jool/header.ts";
import type { Pool4Entry } from "../jool/pool4.ts";
import type { Logger } from "../logger.ts";
import { LogRateLimiter } from "../rate_limit.ts";
import { pool4Empty, type Pool4Table, pool4Table } from "../session/pool4_check.ts";
import type { Stats } from "../stats.ts";
import { Pool4ReadError, readPool4 } from "./pool4_read.ts";
import type { KernelQuerySocket } from "./transport.ts";

/**
 * How often pool4 is read again. pool4 changes only when an operator runs `jool pool4 add/rm/flush` (or loads a
 * new atomic configuration), so a change is seen within 10 s; until then a removed range still admits synced
 * sessions and an added one's are still dropped. A read is three small request/reply exchanges with the
 * kernel (more only for a pool4 of more than about fifty entries per protocol); its cost is not measured.
 */
export const POOL4_REREAD_MS = 10_000;

const EPERM = 1;
const ESRCH = 3;

/** Options of {@link Pool4Watch.start}. */
export interface Pool4WatchOptions {
  /** The socket the listings go through (its own, not the kernel thread's); closed by {@link Pool4Watch.stop}. */
  readonly socket: KernelQuerySocket;
  /** The instance whose pool4 is read. */
  readonly instance: string;
  /** The local kernel's version, when known. */
  readonly version?: JoolVersion;
  /** Counters (`POOL4_READ_ERRORS`). */
  readonly stats: Stats;
  /** Where changes, an empty pool4 and read failures are reported. */
  readonly log: Logger;
  /** Re-read interval (default {@link POOL4_REREAD_MS}); tests shorten it. */
  readonly intervalMs?: number;
}

/** Keeps the last pool4 read from the kernel. */
export class Pool4Watch {
  readonly #options: Pool4WatchOptions;
  readonly #limiter = new LogRateLimiter(60_000);
  #table: Pool4Table;
  #signature: string;
  #timer: ReturnType<typeof setInterval> | undefined;
  #reading = false;
  #stopped = false;
  #seq: number;

  private constructor(options: Pool4WatchOptions, entries: Pool4Entry[], seq: number) {
    this.#options = options;
    this.#table = pool4Table(entries);
    this.#signature = signature(entries);
    this.#seq = seq;
  }

  /**
   * Reads pool4 once and starts the periodic re-reads. Throws JooldError when the first read fails
   * (EXIT.PERMISSION without CAP_NET_ADMIN, EXIT.INSTANCE_ABSENT for an unknown instance, EXIT.RUNTIME otherwise);
   * the socket is closed then.
   */
  static async start(options: Pool4WatchOptions): Promise<Pool4Watch> {
    let entries: Pool4Entry[];
    // Like libnl: start near time() so two runs rarely reuse a sequence number; never 0.
    let seq = (Math.floor(Date.now() / 1000) & 0x3fffffff) || 1;
    try {
      entries = await readPool4(options.socket, {
        instance: options.instance,
        version: options.version,
        nextSeq: () => seq++,
      });
    } catch (cause) {
      options.socket.close();
      const code = cause instanceof Pool4ReadError ? cause.code : undefined;
      throw new JooldError(
        code === EPERM ? EXIT.PERMISSION : code === ESRCH ? EXIT.INSTANCE_ABSENT : EXIT.RUNTIME,
        `"check pool4" is on but the pool4 of instance "${options.instance}" cannot be read: ${
          errorMessage(cause)
        }; run joold with CAP_NET_ADMIN on a Jool 4.1 NAT64 instance, or set "check pool4": 0`,
        { cause },
      );
    }
    const watch = new Pool4Watch(options, entries, seq);
    watch.#report(entries, true);
    watch.#timer = setInterval(() => watch.refresh(), options.intervalMs ?? POOL4_REREAD_MS);
    return watch;
  }

  /** The last table read. */
  get table(): Pool4Table {
    return this.#table;
  }

  /** Reads pool4 again now (the timer calls it); a failure keeps the last table. Never rejects. */
  async refresh(): Promise<void> {
    if (this.#reading || this.#stopped) return; // the previous read is still waiting for the kernel
    this.#reading = true;
    try {
      const entries = await readPool4(this.#options.socket, {
        instance: this.#options.instance,
        version: this.#options.version,
        nextSeq: () => this.#seq++,
      });
      const next = signature(entries);
      if (next !== this.#signature) {
        this.#table = pool4Table(entries);
        this.#signature = next;
        this.#report(entries, false);
      }
    } catch (error) {
      this.#options.stats.add("POOL4_READ_ERRORS");
      const line = this.#limiter.line(
        "read",
        `cannot read pool4 again (the last one read stays in use): ${errorMessage(error)}`,
      );
      if (line) this.#options.log.warn(line);
    } finally {
      this.#reading = false;
      if (this.#stopped) this.#options.socket.close(); // stop() came during the read: its wait has ended now
    }
  }

  /**
   * Stops the re-reads and closes the socket (after the read in progress, if any: a descriptor is not closed
   * under a wait on it). Idempotent.
   */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#stopped = true;
    if (!this.#reading) this.#options.socket.close();
  }

  #report(entries: Pool4Entry[], first: boolean): void {
    const { log, instance } = this.#options;
    if (pool4Empty(this.#table)) {
      log.warn(
        `"check pool4" is on and the pool4 of instance "${instance}" is empty: every session synced from the ` +
          "network is dropped (Jool would mask with this host's own addresses, which the check does not model); " +
          'add pool4 entries (jool pool4 add) or set "check pool4": 0',
      );
      return;
    }
    const perProto = this.#table.ranges.map((r, p) => `${["TCP", "UDP", "ICMP"][p]} ${r.length}`).join(", ");
    log.info(`pool4 ${first ? "read" : "changed"}: ${entries.length} entries (${perProto})`);
  }
}

/** A text that changes whenever the listing does (to log changes, and only those). */
function signature(entries: readonly Pool4Entry[]): string {
  return entries.map((e) =>
    `${e.proto}/${e.mark}/${e.address}/${e.prefixLength}/${e.portMin}-${e.portMax}/${e.flags}/${e.iterations}`
  ).join(";");
}
