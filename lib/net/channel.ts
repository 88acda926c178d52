/**
 * The net channel: the UDP multicast socket joold uses to talk to the other synchronization daemons.
 *
 * A thin shell around `Deno.listenDatagram`. What Deno's API lacks (outgoing interface, IPv6 hop limit) is set
 * on the same socket's descriptor by `ffi/socket_options.ts`; see that module for why. The payload is opaque
 * here: validation of session entries happens above, in the relay.
 *
 * Opt-in (docs/protocol.md §12): with `"peers"` every datagram also goes to each unicast peer, and the socket is
 * bound to the wildcard address so it hears them; with `"accept from"` datagrams are read through
 * `ffi/packet_info.ts` (source and arrival interface) and filtered by `./ingress.ts` before anyone sees them.
 * Without those keys the socket, its binding and its receive path are the upstream-compatible ones.
 * @module
 */
import { LogRateLimiter } from "../rate_limit.ts";
import { socketDropReader } from "./socket_drops.ts";
import {
  findSocketDescriptor,
  interfaceMtu,
  setMulticastAllOff,
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
import { addressBytes, addressText } from "./address.ts";
import { IngressFilter } from "./ingress.ts";
import { PacketInfoReceiver } from "../../ffi/packet_info.ts";
import { interfaceIndex } from "../../ffi/host.ts";
import type { Logger } from "../logger.ts";
import type { Stats } from "../stats.ts";
import { DEFAULT_LINK_MTU, packetPayloadLimit, type SyncLink } from "./packet_fit.ts";

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

/**
 * Longest wait in poll() of the filtered receive path: a closed channel's loop ends within it (the socket is
 * closed at once; only the poll on a runtime thread lingers).
 */
const FILTERED_POLL_MS = 250;

/**
 * Datagrams the filtered receive path reads back to back before it lets the event loop run: its reads are
 * synchronous, so a flood of refused datagrams would otherwise starve the kernel channel and timers.
 */
const FILTERED_BURST = 64;

/** Longest pause after consecutive receive errors, so a persistent error cannot spin the CPU. */
const RECEIVE_ERROR_MAX_BACKOFF_MS = 1_000;

/** Dependencies of {@link NetChannel}. */
export interface NetChannelDeps {
  /** Counters the channel bumps. */
  readonly stats: Stats;
  /** Where send and receive errors are logged. */
  readonly log: Logger;
}

/** The ingress filter and the packet-info reader it needs (only with `"accept from"`). */
interface Ingress {
  readonly filter: IngressFilter;
  readonly receiver: PacketInfoReceiver;
}

/** The multicast socket towards the other daemons. */
export class NetChannel {
  readonly #conn: Deno.DatagramConn;
  readonly #destinations: readonly Deno.NetAddr[];
  readonly #ingress: Ingress | undefined;
  readonly #stats: Stats;
  readonly #log: Logger;
  #closed = false;
  readonly #sendErrors = new LogRateLimiter(SEND_ERROR_LOG_INTERVAL_MS, () => performance.now());
  readonly #refusals = new LogRateLimiter(SEND_ERROR_LOG_INTERVAL_MS, () => performance.now());

  /** The socket's descriptor (the one the options were set on), for diagnostics and tests. */
  readonly descriptor: number;
  /** The link datagrams leave on, and its MTU (read at open; see {@link syncLinkOf}). */
  readonly link: SyncLink;
  /** UDP payload bytes one packet of {@link link} carries: a longer datagram leaves in IP fragments. */
  readonly #packetLimit: number;

  private constructor(
    conn: Deno.DatagramConn,
    descriptor: number,
    destinations: readonly Deno.NetAddr[],
    ingress: Ingress | undefined,
    link: SyncLink,
    deps: NetChannelDeps,
  ) {
    this.#conn = conn;
    this.descriptor = descriptor;
    this.link = link;
    this.#packetLimit = packetPayloadLimit(link);
    this.#destinations = destinations;
    this.#ingress = ingress;
    this.#stats = deps.stats;
    this.#log = deps.log;
  }

  /**
   * Binds the group address:port (Deno.listenDatagram, reuseAddress from reuseaddr, loopback false; an ff02::
   * group binds "ff02::x%ifname"), joins on the in interface (v4: joinMulticastV4(group, inAddr or 0.0.0.0);
   * v6: joinMulticastV6(group, ifindex, else the group's scope, else 0)), then sets multicast loop off,
   * TTL/hops and the out interface through ffi. Errors: JooldError(EXIT.NET_SETUP, one line naming the file),
   * the ffi error as `cause`.
   *
   * With `peers`: binds the wildcard address at the port instead (unicast datagrams from the peers must reach
   * it), joins the group if there is one, and turns IP(V6)_MULTICAST_ALL off so no other group is heard.
   * With `acceptFrom`: turns packet info on and receives through it (see {@link receive}).
   */
  static async open(config: NetSocketConfig, deps: NetChannelDeps): Promise<NetChannel> {
    const group = config.groupAddress;
    const wildcard = config.family === 4 ? "0.0.0.0" : "::";
    const groupHost = group === undefined
      ? undefined
      : config.scope
      ? `${group}%${config.scope.name}`
      : group;
    const hostname = config.peers ? wildcard : groupHost!;
    const where = config.family === 6 ? `[${hostname}]:${config.port}` : `${hostname}:${config.port}`;
    const boundBytes = addressBytes(config.peers ? wildcard : group!);
    if (!boundBytes) throw new TypeError(`${config.file}: the validated group is not an address: ${group}`);
    const bound = {
      family: config.family,
      bytes: boundBytes,
      port: config.port,
      scopeId: config.peers ? 0 : config.scope?.index ?? 0,
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
      if (config.peers) setMulticastAllOff(descriptor, config.family);
      if (group === undefined) {
        // Unicast peers only: no group to join.
      } else if (config.family === 4) {
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
      const ingress = config.acceptFrom ? ingressOf(config, descriptor) : undefined;
      deps.log.debug(
        `net channel bound to ${where} (descriptor ${descriptor}, receive buffer ${granted} B, ttl ${config.ttl}, out ${
          out?.text ?? "default"
        })`,
      );
      const destinations: Deno.NetAddr[] = [
        ...(groupHost === undefined
          ? []
          : [{ transport: "udp" as const, hostname: groupHost, port: config.port }]),
        ...(config.peers ?? []).map((peer) => ({
          transport: "udp" as const,
          hostname: peer.address,
          port: peer.port,
        })),
      ];
      const link = syncLinkOf(config, descriptor);
      return new NetChannel(conn, descriptor, destinations, ingress, link, deps);
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
   * Sends one datagram to group:port (scope included) and to each unicast peer. Counts NET_SENT_PKTS/BYTES per
   * destination reached (and NET_SENT_FRAGMENTED when it is larger than one packet of the link carries),
   * NET_SENT_SESSIONS (when given) once if any was, NET_SEND_ERRORS per destination that failed (logged, at
   * most one line a second per destination); never throws. True when every destination got it.
   */
  async send(payload: Uint8Array, sessions?: number): Promise<boolean> {
    let reached = 0;
    for (const destination of this.#destinations) {
      try {
        const sent = await this.#conn.send(payload, destination);
        if (sent !== payload.length) {
          throw new Error(`only ${sent} of ${payload.length} bytes were sent`);
        }
      } catch (error) {
        this.#stats.add("NET_SEND_ERRORS");
        this.#logSendError(error, destination);
        continue;
      }
      reached++;
      this.#stats.add("NET_SENT_PKTS");
      this.#stats.add("NET_SENT_BYTES", payload.length);
      if (payload.length > this.#packetLimit) this.#stats.add("NET_SENT_FRAGMENTED");
    }
    if (sessions !== undefined && reached > 0) this.#stats.add("NET_SENT_SESSIONS", sessions);
    return reached === this.#destinations.length;
  }

  /**
   * Yields datagrams until close(). Counts NET_RCVD_PKTS/BYTES for each. Reads with a buffer far larger than any
   * legal datagram (legal ≤ 2048 bytes) so an oversize datagram is detected whole, counted as drop
   * net_oversize and not yielded. Receive errors: NET_RECV_ERRORS, logged, loop continues.
   * Each yielded array is a view of the channel's receive buffer, valid until the loop asks for the next one
   * (the relay validates it and copies it into a JOOLD_ADD within the iteration): no per-datagram copy. Copy
   * it to keep it. Iterate it once: one receive loop per channel.
   * With `"accept from"`, datagrams are read with their packet info instead and filtered first.
   */
  receive(): AsyncIterable<Uint8Array> {
    return this.#ingress ? this.#receiveFiltered(this.#ingress) : this.#receivePlain();
  }

  async *#receivePlain(): AsyncIterable<Uint8Array> {
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

  /**
   * The `"accept from"` path: recvmsg() with packet info until nothing is waiting, then a poll() on a runtime
   * thread with a timeout (so close() ends the loop within {@link FILTERED_POLL_MS}); after
   * {@link FILTERED_BURST} reads in a row the event loop gets a turn. A datagram from a source
   * outside the list, or (with "in interface") arriving on another interface, is counted by reason and never
   * yielded. The rest is as in the plain path.
   */
  async *#receiveFiltered({ filter, receiver }: Ingress): AsyncIterable<Uint8Array> {
    let consecutiveErrors = 0;
    let burst = 0;
    while (!this.#closed) {
      let datagram: ReturnType<PacketInfoReceiver["receive"]>;
      try {
        if (++burst > FILTERED_BURST) {
          // A poll() that returns at once, on a runtime thread: one event-loop turn (~40 µs here). Not
          // setTimeout(0): ~2 ms each here (500 in a row took 1.05 s), a cap of 64 datagrams per 2 ms.
          burst = 0;
          await receiver.readable(0);
          if (this.#closed) return;
        }
        datagram = receiver.receive();
        if (datagram === "empty") {
          burst = 0;
          await receiver.readable(FILTERED_POLL_MS);
          continue;
        }
      } catch (error) {
        if (this.#closed) return;
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
      const verdict = datagram.source === undefined
        ? "net_source_refused"
        : filter.check(datagram.source.bytes, datagram.interfaceIndex);
      if (verdict !== undefined) {
        this.#stats.drop(verdict);
        const line = this.#refusals.line(
          verdict,
          `dropped a datagram from ${
            datagram.source ? addressText(datagram.source.bytes) : "an unknown source"
          } (${verdict}: ${
            verdict === "net_source_refused"
              ? 'not in "accept from"'
              : `arrived on interface ${datagram.interfaceIndex ?? "unknown"}, not the in interface`
          })`,
        );
        if (line) this.#log.debug(line);
        continue;
      }
      if (datagram.length > NET_MAX_PAYLOAD) {
        this.#stats.drop("net_oversize");
        this.#log.debug(`dropped a ${datagram.length}-byte datagram (more than ${NET_MAX_PAYLOAD} bytes)`);
        continue;
      }
      yield receiver.buffer.subarray(0, datagram.length);
    }
  }

  /** Closes the socket; a pending receive() ends. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  #logSendError(error: unknown, destination: Deno.NetAddr): void {
    // One destination: upstream's wording; several: say which one failed, each limited on its own.
    const to = this.#destinations.length === 1 ? "" : ` ${hostPort(destination)}`;
    const line = this.#sendErrors.line(
      `send${to}`,
      `could not send a datagram to the network${to ? ` (to${to})` : ""}: ${errorMessage(error)}`,
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

/**
 * The interface datagrams leave on — `out interface`, else `in interface`, else the group's scope — and its MTU,
 * asked of the socket itself (its network namespace's answer); {@link DEFAULT_LINK_MTU} when no interface is
 * named (the routing table decides then, per destination) or its MTU cannot be read.
 */
function syncLinkOf(config: NetSocketConfig, descriptor: number): SyncLink {
  const name = config.outInterface?.name ?? config.inInterface?.name ?? config.scope?.name;
  const mtu = name === undefined ? undefined : interfaceMtu(descriptor, name);
  return mtu !== undefined && mtu > 0
    ? { name, mtu, measured: true, family: config.family }
    : { name, mtu: DEFAULT_LINK_MTU, measured: false, family: config.family };
}

/** The ingress filter of a config with `acceptFrom`, and packet info turned on for it. */
function ingressOf(config: NetSocketConfig, descriptor: number): Ingress {
  const inInterface = config.inInterface;
  let index: number | undefined;
  if (inInterface) {
    index = inInterface.index ??
      (inInterface.name === undefined ? undefined : interfaceIndex(inInterface.name));
    if (index === undefined) {
      throw new JooldError(
        EXIT.NET_SETUP,
        `cannot find the index of the in interface ${inInterface.text}, needed to check where datagrams arrive`,
      );
    }
  }
  return {
    filter: new IngressFilter(config.acceptFrom!, index),
    receiver: new PacketInfoReceiver(descriptor, config.family, RECEIVE_BUFFER_SIZE),
  };
}

function hostPort(address: Deno.NetAddr): string {
  return address.hostname.includes(":")
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}
