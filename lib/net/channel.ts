/**
 * The net channel: the UDP multicast socket joold uses to talk to the other synchronization daemons.
 *
 * A thin shell around `Deno.listenDatagram`. What Deno's API lacks (outgoing interface, IPv6 hop limit) is set
 * on the same socket's descriptor by `ffi/socket_options.ts`; see that module for why. The payload is opaque
 * here: validation of session entries happens above, in the relay.
 * @module
 */
import { LogRateLimiter } from "../rate_limit.ts";
import { socketDropReader } from "./socket_drops.ts";
import {
  findSocketDescriptor,
  setMulticastInterfaceV4,
  setMulticastInterfaceV6,
  setMulticastLoop,
  setMulticastTtl,
  setReceiveBuffer,
  SocketDescriptorError,
  socketDescriptorsBoundTo,
  SocketOptionError,
} from "../../ffi/socket_options.ts";
import type { NetSocketConfig } from "../config/types.ts";
import { errorMessage, EXIT, JooldError } from "../errors.ts";
import { addressBytes } from "./address.ts";
import type { Logger } from "../logger.ts";
import type { Stats } from "../stats.ts";

/** Largest legal datagram (upstream's JOOLD_MAX_PAYLOAD); anything bigger is dropped as `net_oversize`. */
export const NET_MAX_PAYLOAD = 2048;

/** Receive buffer requested for the multicast socket. */
export const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Receive buffer size: larger than any UDP payload (65,507 bytes over IPv4, 65,527 over IPv6), so a datagram
 * is never cut and an oversize one is seen whole instead of silently truncated (upstream reads 2048 bytes).
 */
const RECEIVE_BUFFER_SIZE = 65_536;

/** At most one send-error line per this many milliseconds; the others are counted in the next line. */
const SEND_ERROR_LOG_INTERVAL_MS = 1_000;

/** Longest pause after consecutive receive errors, so a persistent error cannot spin the CPU. */
const RECEIVE_ERROR_MAX_BACKOFF_MS = 1_000;

/** Dependencies of {@link NetChannel}. */
export interface NetChannelDeps {
  /** Counters the channel bumps. */
  readonly stats: Stats;
  /** Where send and receive errors are logged. */
  readonly log: Logger;
}

/** The multicast socket towards the other daemons. */
export class NetChannel {
  readonly #conn: Deno.DatagramConn;
  readonly #destination: Deno.NetAddr;
  readonly #stats: Stats;
  readonly #log: Logger;
  #closed = false;
  readonly #sendErrors = new LogRateLimiter(SEND_ERROR_LOG_INTERVAL_MS, () => performance.now());

  /** The socket's descriptor (the one the options were set on), for diagnostics and tests. */
  readonly descriptor: number;

  private constructor(
    conn: Deno.DatagramConn,
    descriptor: number,
    destination: Deno.NetAddr,
    deps: NetChannelDeps,
  ) {
    this.#conn = conn;
    this.descriptor = descriptor;
    this.#destination = destination;
    this.#stats = deps.stats;
    this.#log = deps.log;
  }

  /**
   * Binds the group address:port (Deno.listenDatagram, reuseAddress from reuseaddr, loopback false; an ff02::
   * group binds "ff02::x%ifname"), joins on the in interface (v4: joinMulticastV4(group, inAddr or 0.0.0.0);
   * v6: joinMulticastV6(group, ifindex, else the group's scope, else 0)), then sets multicast loop off,
   * TTL/hops and the out interface through ffi. Errors: JooldError(EXIT.NET_SETUP, one line naming the file),
   * the ffi error as `cause`.
   */
  static async open(config: NetSocketConfig, deps: NetChannelDeps): Promise<NetChannel> {
    const group = config.groupAddress;
    const hostname = config.scope ? `${group}%${config.scope.name}` : group;
    const where = config.family === 6 ? `[${hostname}]:${config.port}` : `${hostname}:${config.port}`;
    const groupBytes = addressBytes(group);
    if (!groupBytes) throw new TypeError(`${config.file}: the validated group is not an address: ${group}`);
    const bound = {
      family: config.family,
      bytes: groupBytes,
      port: config.port,
      scopeId: config.scope?.index ?? 0,
    };

    // Sockets of this process already bound there (another channel, a test peer) are not ours.
    const before = socketDescriptorsBoundTo(bound);
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({
        transport: "udp",
        hostname,
        port: config.port,
        reuseAddress: config.reuseaddr !== 0,
        loopback: false,
      });
    } catch (cause) {
      throw new JooldError(
        EXIT.NET_SETUP,
        `${config.file}: cannot bind the multicast socket to ${where}: ${errorMessage(cause)}`,
        { cause },
      );
    }

    try {
      const descriptor = findSocketDescriptor(bound, before);
      if (config.family === 4) {
        const inAddress = config.inInterface?.address ?? "0.0.0.0";
        await join(() => conn.joinMulticastV4(group, inAddress), `${group} on ${inAddress}`);
      } else {
        const inIndex = config.inInterface?.index ?? config.scope?.index ?? 0;
        const inName = config.inInterface?.name ?? config.scope?.name ?? "any interface";
        await join(() => conn.joinMulticastV6(group, inIndex), `${group} on ${inName} (index ${inIndex})`);
      }
      // A burst from a peer must not overflow the socket while a JOOLD_ADD is in flight: 4 MiB holds ~1,700
      // maximum-size datagrams (the kernel's default, rmem_default, holds ~90). What still overflows is counted.
      const granted = setReceiveBuffer(descriptor, RECEIVE_BUFFER_BYTES);
      deps.stats.observe("NET_SOCKET_DROPS", socketDropReader(descriptor, config.family));
      // Upstream disables loopback so a daemon never re-reads its own datagrams; Deno's default, set anyway.
      setMulticastLoop(descriptor, config.family, false);
      setMulticastTtl(descriptor, config.family, config.ttl);
      const out = config.outInterface;
      const outBytes = out?.address === undefined ? undefined : addressBytes(out.address);
      if (out && config.family === 4 && outBytes) {
        setMulticastInterfaceV4(descriptor, outBytes);
      } else if (out && config.family === 6 && out.index !== undefined) {
        setMulticastInterfaceV6(descriptor, out.index);
      }
      deps.log.debug(
        `net channel bound to ${where} (descriptor ${descriptor}, receive buffer ${granted} B, ttl ${config.ttl}, out ${
          out?.text ?? "default"
        })`,
      );
      return new NetChannel(conn, descriptor, { transport: "udp", hostname, port: config.port }, deps);
    } catch (error) {
      conn.close();
      if (error instanceof SocketDescriptorError) {
        const message = error.found.length === 0
          ? `cannot find the descriptor of the UDP socket bound to ${where}`
          : `found ${error.found.length} new UDP sockets bound to ${where} (descriptors ${
            error.found.join(", ")
          }); cannot tell which is ours`;
        throw new JooldError(EXIT.NET_SETUP, `${config.file}: ${message}`, { cause: error });
      }
      if (error instanceof SocketOptionError) {
        throw new JooldError(EXIT.NET_SETUP, `${config.file}: ${error.message}`, { cause: error });
      }
      if (error instanceof JooldError) {
        throw new JooldError(error.exitCode, prefixed(config.file, error.message), {
          cause: error.cause ?? error,
        });
      }
      throw error;
    }
  }

  /**
   * Sends one datagram to group:port (scope included). Counts NET_SENT_PKTS/BYTES(/SESSIONS when given) on
   * success, NET_SEND_ERRORS (and logs, at most one line a second) on failure; never throws.
   */
  async send(payload: Uint8Array, sessions?: number): Promise<boolean> {
    try {
      const sent = await this.#conn.send(payload, this.#destination);
      if (sent !== payload.length) {
        throw new Error(`only ${sent} of ${payload.length} bytes were sent`);
      }
    } catch (error) {
      this.#stats.add("NET_SEND_ERRORS");
      this.#logSendError(error);
      return false;
    }
    this.#stats.add("NET_SENT_PKTS");
    this.#stats.add("NET_SENT_BYTES", payload.length);
    if (sessions !== undefined) this.#stats.add("NET_SENT_SESSIONS", sessions);
    return true;
  }

  /**
   * Yields datagrams until close(). Counts NET_RCVD_PKTS/BYTES for each. Reads with a buffer far larger than any
   * legal datagram (legal ≤ 2048 bytes) so an oversize datagram is detected whole, counted as drop
   * net_oversize and not yielded. Receive errors: NET_RECV_ERRORS, logged, loop continues.
   * Each yielded array is a view of the channel's receive buffer, valid until the loop asks for the next one
   * (the relay validates it and copies it into a JOOLD_ADD within the iteration): no per-datagram copy. Copy
   * it to keep it. Iterate it once: one receive loop per channel.
   */
  async *receive(): AsyncIterable<Uint8Array> {
    const buffer = new Uint8Array(RECEIVE_BUFFER_SIZE);
    let consecutiveErrors = 0;
    while (!this.#closed) {
      let datagram: Uint8Array;
      try {
        [datagram] = await this.#conn.receive(buffer);
      } catch (error) {
        if (this.#closed) return; // close() interrupts the pending receive (BadResource / Interrupted).
        this.#stats.add("NET_RECV_ERRORS");
        consecutiveErrors++;
        this.#log.error(`error receiving a datagram from the network: ${errorMessage(error)}`);
        const pause = Math.min(2 ** (consecutiveErrors - 1), RECEIVE_ERROR_MAX_BACKOFF_MS);
        await new Promise((resolve) => setTimeout(resolve, pause));
        continue;
      }
      consecutiveErrors = 0;
      this.#stats.add("NET_RCVD_PKTS");
      this.#stats.add("NET_RCVD_BYTES", datagram.length);
      if (datagram.length > NET_MAX_PAYLOAD) {
        this.#stats.drop("net_oversize");
        this.#log.debug(`dropped a ${datagram.length}-byte datagram (more than ${NET_MAX_PAYLOAD} bytes)`);
        continue;
      }
      yield datagram;
    }
  }

  /** Closes the socket; a pending receive() ends. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  #logSendError(error: unknown): void {
    const line = this.#sendErrors.line(
      "send",
      `could not send a datagram to the network: ${errorMessage(error)}`,
    );
    if (line) this.#log.error(line);
  }
}

async function join(run: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await run();
  } catch (cause) {
    throw new JooldError(EXIT.NET_SETUP, `cannot join multicast group ${what}: ${errorMessage(cause)}`, {
      cause,
    });
  }
}

function prefixed(file: string, message: string): string {
  return message.startsWith(`${file}: `) ? message : `${file}: ${message}`;
}
