/**
 * The raw netlink transport under the kernel channel: whole netlink messages in and out.
 * Two implementations: the libnl one (`lib/kernel/libnl_transport.ts`, the real Jool) and the kernel double
 * (`lib/kernel/double.ts`, test-only). The protocol logic above it (`lib/kernel/channel.ts`) is shared, so tests
 * with the double exercise the same code as production.
 * @module
 */

/** What the transport learned when it opened. */
export interface KernelTransportInfo {
  /** Generic Netlink family id of "Jool". */
  readonly familyId: number;
  /** Our netlink port id (nlmsg_pid of our requests). */
  readonly localPort: number;
}

/** Whole netlink datagrams to and from the kernel. */
export interface KernelTransport extends KernelTransportInfo {
  /** Sends one complete netlink message (already encoded). Throws on failure. */
  send(message: Uint8Array): void;
  /**
   * Yields every netlink datagram received (one datagram may hold several netlink messages), each a fresh
   * array the receiver may keep. Ends when {@link close} is called.
   *
   * `onRead`, when given, sees each datagram synchronously as soon as it has been read, before it is yielded and
   * before the next one is read: the kernel channel ACKs from there, so the kernel's next batch, which it sends
   * in answer to that ACK, is already waiting when the transport reads again (spec §2.3, §2.5).
   */
  receive(onRead?: (datagram: Uint8Array) => void): AsyncIterable<Uint8Array>;
  /**
   * Whether a datagram is waiting that receive() will only yield after an event-loop turn (its reader is parked
   * on an I/O wait). Cheap; called between datagram sends.
   */
  hasPending(): boolean;
  /** Stops receiving and releases the socket. Idempotent. */
  close(): void;
}
