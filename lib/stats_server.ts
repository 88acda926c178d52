/**
 * The UDP stats server: any datagram is answered with the counters (see `stats_format.ts` for the views).
 * @module
 */
import { errorMessage, EXIT, JooldError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Stats } from "./stats.ts";
import { renderForRequest } from "./stats_format.ts";

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
}

/** Serves counters on one UDP socket per bind address. */
export class StatsServer {
  readonly #sockets: Deno.DatagramConn[];
  readonly #loops: Promise<void>[];
  #closed = false;

  private constructor(sockets: Deno.DatagramConn[], private readonly options: StatsServerOptions) {
    this.#sockets = sockets;
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
