/**
 * The transport under the kernel channel: whole netlink datagrams in and out, and the ACK gate the kernel
 * thread obeys. Production: the kernel thread over libnl's netlink socket (`lib/kernel/thread_transport.ts`,
 * `lib/kernel/libnl_transport.ts`); tests run the same thread over a socket pair. The protocol logic above it
 * (`lib/kernel/channel.ts`) is shared.
 * @module
 */
import type { JoolVersion } from "../jool/header.ts";
import type { AckGate } from "./ack_rule.ts";
import type { Logger } from "../logger.ts";

/** What the transport learned when it opened. */
export interface KernelTransportInfo {
  /** Generic Netlink family id of "Jool". */
  readonly familyId: number;
  /** Our netlink port id (nlmsg_pid of our requests). */
  readonly localPort: number;
}

/** One datagram from the kernel (it may hold several netlink messages). */
export interface KernelDatagram {
  /**
   * Its bytes, valid until the receiver asks for the next datagram (the kernel thread's transport reuses one
   * buffer, `lib/kernel/handoff.ts` says why): copy them to keep them.
   */
  readonly bytes: Uint8Array;
  /** The kernel thread ACKed it on arrival (`lib/kernel/ack_rule.ts` rule 3): the channel must not ACK it again. */
  readonly acked: boolean;
}

/** Whole netlink datagrams to and from the kernel. */
export interface KernelTransport extends KernelTransportInfo {
  /** The back-pressure gate the transport's ACKs on arrival obey. */
  readonly ackGate: AckGate;
  /** Sends one complete netlink message (already encoded). Throws on failure. */
  send(message: Uint8Array): void;
  /**
   * Yields every datagram received, in order, until {@link close}. Throws when the receiving side failed. Call
   * it once.
   */
  receive(): AsyncIterable<KernelDatagram>;
  /** Stops receiving and releases the socket; resolves once released. Idempotent. */
  close(): Promise<void>;
}

/** How the daemon reaches its kernel: libnl and the kernel thread in production, a double in tests. */
export interface KernelAccess {
  /** The local Jool's version when it can be read before its first multicast (e.g. /sys/module/jool/version). */
  readVersion(): JoolVersion | undefined;
  /** Opens the transport for `instance`. Throws JooldError with the exit status of the failure. */
  open(instance: string, version: JoolVersion | undefined, log: Logger): Promise<KernelTransport>;
  /**
   * Watches for the kernel side going away for good (the Jool module unloaded: `lib/kernel/module_watch.ts`);
   * `onGone(why)` once when it does; `log` hears why the watch stopped early. Returns a stop function, or
   * undefined when there is nothing to watch.
   */
  watchGone?(onGone: (why: string) => void, log: Logger): (() => void) | undefined;
  /**
   * Opens a socket for requests and their replies (the pool4 listing, `lib/kernel/pool4_read.ts`), apart from
   * the kernel thread's: its replies never mix with the session multicasts. Undefined when this access cannot
   * (then `"check pool4"` cannot be used). Throws JooldError with the exit status of the failure.
   */
  openQuerySocket?(): KernelQuerySocket;
}

/** A socket to the kernel for request and reply, used from the main thread without blocking it. */
export interface KernelQuerySocket {
  /** Generic Netlink family id of "Jool". */
  readonly familyId: number;
  /** Our netlink port id on this socket (nlmsg_pid of its requests). */
  readonly localPort: number;
  /** Sends one complete netlink message. Throws on failure. */
  send(message: Uint8Array): void;
  /** The next datagram received (a fresh copy), or undefined when none came within `timeoutMs`. */
  receive(timeoutMs: number): Promise<Uint8Array | undefined>;
  /** Releases the socket. Idempotent. */
  close(): void;
}
