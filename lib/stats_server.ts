/**
 * The UDP stats server: any datagram is answered with the counters (see `stats_format.ts` for the views).
 *
 * Answers have a budget: {@link STATS_ANSWERS_PER_SECOND}, with as many in one burst. The server shares the main
 * thread with the relay (datagram sends, JOOLD_ADDs), and a request costs a render and a send; anyone who can reach
 * the port could otherwise buy that thread's time with a flood, and a flood's backlog in the socket would delay the
 * next scrape by seconds after it stopped. Beyond the budget a request is read and counted
 * (`STATS_REQUESTS_UNANSWERED`), which is cheap, so the backlog drains at once. Scrapers ask once a minute or every
 * few seconds; the budget is far above that.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Stats } from "./stats.ts";
import { renderForRequest } from "./stats_format.ts";

/** Answers per second the stats server sends at most (and at most this many in one burst). */
export const STATS_ANSWERS_PER_SECOND = 100;

/** Default stats bind addresses: loopback only (upstream binds "::", every address). */
export const DEFAULT_STATS_ADDRESSES: readonly string[] = ["127.0.0.1", "::1"];

/** Options of {@link StatsServer.open}. */
export interface StatsServerOptions {
  /** UDP port to bind. */
  readonly port: number;
  /** Addresses to bind, e.g. ["127.0.0.1", "::1"]. */
  readonly addresses: string[];
  /**
   * True when the addresses are the built-in loopback default: then an address family the host lacks
   * (no IPv6 loopback) is skipped with a warning instead of failing start-up.
   */
  readonly defaultAddresses: boolean;
  /** The counters to render. */
  readonly stats: Stats;
  /** Where bind and reply errors are logged. */
  readonly log: Logger;
  /** Extra fields for the JSON view (instance, kernel version, format). */
  readonly describe?: () => Record<string, unknown>;
  /** Extra lines for the Prometheus view (the reliable mode's). */
  readonly prometheus?: () => string;
  /** Clock in milliseconds for the answer budget; injectable for tests. Default `performance.now`. */
  readonly now?: () => number;
}

/** A token bucket: `perSecond` tokens a second, at most `perSecond` kept. */
class AnswerBudget {
  #tokens: number;
  #at: number;

  constructor(private readonly perSecond: number, private readonly now: () => number) {
    this.#tokens = perSecond;
    this.#at = now();
  }

  /** True (and one token spent) when an answer may be sent now. */
  take(): boolean {
    const t = this.now();
    this.#tokens = Math.min(this.perSecond, this.#tokens + (t - this.#at) * this.perSecond / 1000);
    this.#at = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Serves counters on one UDP socket per bind address. */
export class StatsServer {
  readonly #sockets: Deno.DatagramConn[];
  readonly #loops: Promise<void>[];
  readonly #budget: AnswerBudget;
  #closed = false;

  private constructor(sockets: Deno.DatagramConn[], private readonly options: StatsServerOptions) {
    this.#sockets = sockets;
    this.#budget = new AnswerBudget(STATS_ANSWERS_PER_SECOND, options.now ?? (() => performance.now()));
    this.#loops = sockets.map((socket) => this.#serve(socket));
  }

  /** Binds every address. Throws JooldError(EXIT.STATS_SETUP) naming the address and port. */
  static open(options: StatsServerOptions): StatsServer {
    const sockets: Deno.DatagramConn[] = [];
    for (const hostname of options.addresses) {
      try {
        sockets.push(Deno.listenDatagram({ transport: "udp", hostname, port: options.port }));
      } catch (cause) {
        const reason = errorMessage(cause);
        if (options.defaultAddresses && hostname.includes(":") && sockets.length > 0) {
          options.log.warn(
            `stats server: cannot bind [${hostname}]:${options.port} (${reason}); serving IPv4 only`,
          );
          continue;
        }
        for (const socket of sockets) socket.close();
        throw new JooldError(
          EXIT.STATS_SETUP,
          `stats server: cannot bind ${
            hostname.includes(":") ? `[${hostname}]` : hostname
          }:${options.port} (${reason}); ` +
            "pick a free port or another --stats-address",
          { cause },
        );
      }
    }
    options.log.info(`stats server listening on UDP port ${options.port} (${options.addresses.join(", ")})`);
    return new StatsServer(sockets, options);
  }

  /** Addresses actually bound (for tests and logs). */
  get boundAddresses(): Deno.NetAddr[] {
    return this.#sockets.map((s) => s.addr as Deno.NetAddr);
  }

  async #serve(socket: Deno.DatagramConn): Promise<void> {
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    while (!this.#closed) {
      let request: Uint8Array;
      let peer: Deno.Addr;
      try {
        [request, peer] = await socket.receive();
      } catch (error) {
        if (this.#closed) return;
        this.options.log.warn(
          `stats server: receive failed: ${errorMessage(error)}`,
        );
        continue;
      }
      if (!this.#budget.take()) {
        this.options.stats.add("STATS_REQUESTS_UNANSWERED");
        continue;
      }
      const reply = renderForRequest(
        decoder.decode(request),
        this.options.stats.snapshot(),
        this.options.describe?.() ?? {},
        this.options.prometheus,
      );
      try {
        await socket.send(encoder.encode(reply), peer);
      } catch (error) {
        if (this.#closed) return;
        this.options.log.warn(
          `stats server: reply failed: ${errorMessage(error)}`,
        );
      }
    }
  }

  /** Closes every socket and waits for the loops to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#sockets) socket.close();
    await Promise.allSettled(this.#loops);
  }
}
