/**
 * The daemon's counters. Every component increments them; the stats server renders them.
 *
 * Counters are JS numbers: exact up to 2^53, so they never wrap in practice (upstream's C `atomic_int`
 * wraps at 2^31).
 * @module
 */

/** Names of the plain counters. The first six are the stats server's `NAME,value` lines. */
export const COUNTER_NAMES = [
  // The six of the `NAME,value` reply, with the meanings of the user documentation (docs/protocol.md §9.2).
  "KERNEL_SENT_PKTS", // JOOLD_ADD messages sent to the local kernel
  "KERNEL_SENT_BYTES", // session bytes in them (container payload)
  "NET_RCVD_PKTS", // datagrams received from the network (before validation)
  "NET_RCVD_BYTES",
  "NET_SENT_PKTS", // datagrams sent to the network successfully
  "NET_SENT_BYTES",
  // Internal ones, shown by the `json` and `prometheus` views.
  "KERNEL_RCVD_BATCHES", // session batches received from the local kernel for our instance
  "KERNEL_RCVD_BYTES", // session bytes in them (what upstream calls KERNEL_SENT_*)
  "KERNEL_RCVD_SESSIONS",
  "KERNEL_SENT_SESSIONS", // sessions in the JOOLD_ADDs sent
  "KERNEL_ACKS_SENT",
  "KERNEL_OTHER_INSTANCE_BATCHES", // multicasts for another instance of this namespace (ignored, not ACKed)
  "KERNEL_ERROR_REPLIES", // Jool error replies and NLMSG_ERRORs (by code in `kernelErrors`)
  "KERNEL_ADDS_REJECTED_SS_DISABLED", // error replies saying session sync is disabled on the instance
  "KERNEL_SEND_ERRORS", // netlink sends that failed
  "NET_RCVD_SESSIONS", // sessions in the datagrams accepted from the network (after the pool4 check, when on)
  "NET_SENT_SESSIONS",
  "NET_SEND_ERRORS", // sendto() failures
  "NET_RECV_ERRORS",
  "NET_SOCKET_DROPS", // datagrams the kernel dropped in our socket's full receive buffer (sampled from /proc)
  // What fits one packet of the sync link (lib/net/packet_fit.ts): datagrams sent larger than one packet carries
  // (so in IP fragments), per destination as NET_SENT_PKTS; and batches a framed wire cut instead (lib/relay.ts).
  "NET_SENT_FRAGMENTED",
  "NET_BATCHES_SPLIT",
  // "check pool4" (lib/session/pool4_check.ts): every session it drops, whether its datagram went on without it
  // or was dropped whole (then also one `net_outside_pool4`); and the periodic pool4 reads that failed.
  "NET_SESSIONS_OUTSIDE_POOL4",
  "POOL4_READ_ERRORS",
  // Stats requests read but not answered: beyond the stats server's answer budget (lib/stats_server.ts).
  "STATS_REQUESTS_UNANSWERED",
] as const;

/** One plain counter name. */
export type CounterName = typeof COUNTER_NAMES[number];

/**
 * Why something was dropped. Every drop bumps exactly one reason.
 * `net_*`: a datagram from the network that never reached the kernel.
 * `kernel_*`: a kernel message that never reached the network.
 */
export const DROP_REASONS = [
  "net_source_refused", // "accept from": the source is not in the list (lib/net/ingress.ts)
  "net_wrong_interface", // "accept from" with "in interface": arrived on another interface (IP_PKTINFO)
  "net_oversize", // larger than any legal datagram (read with a bigger buffer, so it was not cut)
  "net_empty", // no session at all
  "net_truncated_entry", // a partial entry or an entry header that does not fit
  "net_foreign_format", // whole entries, but of a format the local kernel does not speak
  "net_bad_field", // protocol, TCP state or timer out of range
  "net_format_unknown", // the local kernel's format is not known yet
  "net_framed", // upstream mode: a reliable-mode frame (a mixed group)
  "net_unframed", // reliable mode: a plain datagram (a mixed group)
  "net_frame_short", // reliable mode: shorter than the frame header
  "net_frame_version", // reliable mode: another frame version
  "net_frame_type", // reliable mode: an unknown frame type
  "net_frame_flags", // reliable mode: reserved flags set
  "net_frame_sender", // reliable mode: sender id 0
  "net_frame_body", // reliable mode: a body of the wrong length for its type
  "net_outside_pool4", // "check pool4": every session of the datagram outside the local pool4
  "net_auth_unexpected", // no "key file": an authenticated frame (a mixed group)
  "net_auth_missing", // "key file": no authentication trailer, or too short for one
  "net_auth_bad", // "key file": the tag matches neither key
  "net_auth_replay", // "key file": a frame counter already seen, or behind the sender's replay window
  "net_auth_stale", // "key file": the sender's timestamp is outside the freshness window
  "kernel_bad_message", // too short, bad magic, not NAT64, malformed attributes
  "kernel_version_mismatch", // a kernel of another major.minor
  "kernel_no_container", // a batch without its session container
  "kernel_queue_full", // the queue towards the network was full
  "kernel_overrun", // the netlink receive buffer overflowed (ENOBUFS): an unknown number of batches lost
] as const;

/** One drop reason. */
export type DropReason = typeof DROP_REASONS[number];

/** A point-in-time copy of every counter. */
export interface StatsSnapshot {
  /** Every plain counter. */
  counters: Record<CounterName, number>;
  /** Drops by reason. */
  drops: Record<DropReason, number>;
  /** Kernel error replies by positive errno code. */
  kernelErrors: Record<string, number>;
}

/** The daemon's mutable counter set. */
export class Stats {
  readonly #counters = new Map<CounterName, number>(COUNTER_NAMES.map((n) => [n, 0]));
  readonly #drops = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));
  readonly #kernelErrors = new Map<number, number>();
  readonly #observed = new Map<CounterName, () => number>();

  /** Makes `name` a counter sampled from `read` at each snapshot (counts kept by the kernel, not by us). */
  observe(name: CounterName, read: () => number): void {
    this.#observed.set(name, read);
  }

  /** Adds `by` (default 1) to a counter. */
  add(name: CounterName, by = 1): void {
    this.#counters.set(name, this.#counters.get(name)! + by);
  }

  /** Current value of a counter. */
  get(name: CounterName): number {
    const read = this.#observed.get(name);
    return read ? read() : this.#counters.get(name)!;
  }

  /** Counts one drop for `reason`. */
  drop(reason: DropReason): void {
    this.#drops.set(reason, this.#drops.get(reason)! + 1);
  }

  /** Drops counted for `reason`. */
  drops(reason: DropReason): number {
    return this.#drops.get(reason)!;
  }

  /** Counts one kernel error reply with its positive errno code. */
  kernelError(code: number): void {
    this.add("KERNEL_ERROR_REPLIES");
    this.#kernelErrors.set(code, (this.#kernelErrors.get(code) ?? 0) + 1);
  }

  /** Copies every counter. */
  snapshot(): StatsSnapshot {
    return {
      counters: Object.fromEntries(COUNTER_NAMES.map((n) => [n, this.get(n)])) as Record<CounterName, number>,
      drops: Object.fromEntries(this.#drops) as Record<DropReason, number>,
      kernelErrors: Object.fromEntries([...this.#kernelErrors].map(([k, v]) => [String(k), v])),
    };
  }
}
