/**
 * The relay between the kernel channel and the net channel: each kernel batch → one datagram; each datagram →
 * validated by the wire codec → one JOOLD_ADD. Every drop is counted by reason.
 *
 * Queues: kernel → net goes through a bounded queue drained by one sender (a datagram send is asynchronous);
 * its capacity caps memory at `netQueueCapacity` × 2 KiB. When it passes three quarters full, the relay holds
 * the kernel's ACKs (the ACK gate, `lib/kernel/ack_rule.ts` rule 4) until it is back under a quarter.
 * `kernel_queue_full` remains for a kernel that flushes without ACKs (its deadline). The ACKs themselves leave
 * from the kernel thread, so nothing the relay does on the main thread delays them. Batches that queue up
 * behind a send leave together, as one datagram of whole entries ({@link COALESCED_MAX_BYTES}). On a framed
 * wire (a key, or the reliable mode) a batch that would not fit one packet of the sync link once framed is cut
 * at a session boundary instead of leaving in IP fragments, its rest leading the next frame
 * (`Relay`'s `#takeNext`, `./net/packet_fit.ts`).
 * Net → kernel needs no queue: JOOLD_ADD is a synchronous netlink send, so the receive loop itself applies
 * back-pressure and the socket's receive buffer is the only queue.
 * @module
 */
import type { AckGate } from "./kernel/ack_rule.ts";
import type { Logger } from "./logger.ts";
import { LogRateLimiter } from "./rate_limit.ts";
import type { SessionFormat } from "./session/format.ts";
import type { DropReason, Stats } from "./stats.ts";
import type { WireCodec } from "./wire.ts";
import { concatBytes } from "./jool/netlink.ts";
import { checkPool4, type Pool4Table } from "./session/pool4_check.ts";
import { ENTRY_SIZE } from "./session/format.ts";
import {
  batchFit,
  datagramLimit,
  fitSetting,
  linkText,
  packetPayloadLimit,
  splitAtEntries,
  type SyncLink,
} from "./net/packet_fit.ts";

/**
 * The most payload bytes one datagram carries when queued batches are sent together: what a 4.1.9 kernel puts
 * in one batch at most (ss-max-payload, 1 452), so no receiver sees a datagram larger than a kernel's own
 * (upstream reads 2 048).
 */
export const COALESCED_MAX_BYTES = 1452;

/** What the relay needs of the kernel channel. */
export interface KernelSide {
  /** The local kernel's session format, once known. */
  readonly format: SessionFormat | undefined;
  /** The gate the relay holds while its network queue is too full. */
  readonly ackGate: AckGate;
  /** Hands a validated payload to the kernel (one JOOLD_ADD). */
  addSessions(payload: Uint8Array, sessions: number): void;
  /** Receives batches until closed, each given to `onBatch` (valid only during the call: the relay copies it). */
  run(onBatch: (payload: Uint8Array, sessions: number) => void): Promise<void>;
}

/** What the relay needs of the net channel. */
export interface NetSide {
  /** Sends one datagram to the peers; false when it could not be sent (counted by the channel). */
  send(datagram: Uint8Array, sessions?: number): Promise<boolean>;
  /** Datagrams, each valid until the next iteration (the net channel reuses its receive buffer). */
  receive(): AsyncIterable<Uint8Array>;
}

/** Relay tuning. */
export interface RelayOptions {
  /** Kernel batches waiting for the network, at most (default 1024). */
  readonly netQueueCapacity?: number;
  /**
   * `"check pool4"`: the local pool4 (`lib/kernel/pool4_watch.ts`); sessions from the network outside it are
   * dropped before the kernel sees them (`lib/session/pool4_check.ts`). Absent: no check.
   */
  readonly pool4?: () => Pool4Table;
  /**
   * The link datagrams leave on (`NetChannel.link`). With it, a framed wire cuts a batch that would not fit one
   * packet, and a batch too large for one packet is logged (once an hour) with the Jool setting that avoids
   * it. Absent: no cut, no line (the tests' fakes).
   */
  readonly link?: SyncLink;
  /** The Jool instance, named in that line (default "default"). */
  readonly instance?: string;
}

/** A kernel batch (or what is left of one) waiting for the network. */
interface QueuedBatch {
  readonly payload: Uint8Array;
  readonly sessions: number;
  /** The rest of a batch already cut (counted once). */
  readonly cut?: boolean;
}

/** At most one line an hour saying that batches do not fit one packet: the fix is a configuration change. */
const FIT_LOG_INTERVAL_MS = 3_600_000;

/** Moves session batches both ways until the channels close. */
export class Relay {
  readonly #queue: QueuedBatch[] = [];
  #wake: (() => void) | undefined;
  #stopped = false;
  readonly #capacity: number;
  readonly #pool4: (() => Pool4Table) | undefined;
  readonly #limiter = new LogRateLimiter();
  readonly #fitLog = new LogRateLimiter(FIT_LOG_INTERVAL_MS);
  readonly #link: SyncLink | undefined;
  readonly #instance: string;
  /** Payload bytes a datagram of this wire may carry within one packet of the link (undefined: no link). */
  readonly #fit: number | undefined;
  /** Batches longer than this are cut at a session boundary (framed wires only; undefined: never). */
  readonly #splitAbove: number | undefined;
  /** Queued batches coalesce up to this many bytes. */
  readonly #coalesceMax: number;

  /** A relay between `kernel` and `net`, datagrams made and checked by `codec`. */
  constructor(
    private readonly kernel: KernelSide,
    private readonly net: NetSide,
    private readonly codec: WireCodec,
    private readonly stats: Stats,
    private readonly log: Logger,
    options: RelayOptions = {},
  ) {
    this.#capacity = options.netQueueCapacity ?? 1024;
    this.#pool4 = options.pool4;
    this.#link = options.link;
    this.#instance = options.instance ?? "default";
    // What fits one packet and every receiver's read (lib/net/packet_fit.ts), around this wire's overhead.
    this.#fit = options.link && datagramLimit(options.link) - codec.overhead;
    // Upstream's wire (no overhead) stays as it always was: its datagram is the kernel's batch, byte for byte.
    this.#splitAbove = codec.overhead > 0 ? this.#fit : undefined;
    this.#coalesceMax = Math.min(COALESCED_MAX_BYTES, this.#splitAbove ?? Infinity);
  }

  /**
   * Runs until either channel ends (they end when closed; one ending alone means it failed or its peer went
   * away, and the relay cannot go on half-open). Rejects with the channel's error.
   */
  async run(): Promise<void> {
    const sender = this.#sendLoop();
    try {
      await Promise.race([
        this.kernel.run((payload, sessions) => this.#fromKernel(payload, sessions)),
        this.#fromNet(),
      ]);
    } finally {
      this.stop();
      await sender;
    }
  }

  /** Kernel batches waiting for the network (the reliable mode's replay yields to them). */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Stops the sender loop (the channels are closed by their owner). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
    this.kernel.ackGate.release();
  }

  #fromKernel(payload: Uint8Array, sessions: number): void {
    if (this.#queue.length >= this.#capacity) {
      this.#dropped("kernel_queue_full", `network send queue full (${this.#capacity} datagrams)`);
      return;
    }
    // A copy: the kernel channel hands over a view of a buffer it reuses for its next datagram
    // (lib/kernel/handoff.ts).
    this.#queue.push({ payload: payload.slice(), sessions });
    if (!this.#stopped && this.#queue.length >= Math.ceil(this.#capacity * 3 / 4)) this.kernel.ackGate.hold();
    this.#wake?.();
  }

  async #sendLoop(): Promise<void> {
    while (true) {
      const next = this.#takeNext();
      if (next) {
        if (this.#queue.length <= Math.floor(this.#capacity / 4) && this.kernel.ackGate.held) {
          this.kernel.ackGate.release();
        }
        // Upstream's wire, or a batch that cannot be cut: it leaves as it is, in IP fragments (counted there).
        if (this.#fit !== undefined && next.payload.length > this.#fit) {
          this.#tooLarge(next.payload, next.sessions);
        }
        await this.net.send(this.codec.encode(next.payload), next.sessions);
        continue;
      }
      if (this.#stopped) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  /**
   * The next datagram's payload: the oldest batch, followed by the batches queued behind it while they fit in
   * {@link COALESCED_MAX_BYTES}. Why: the kernel thread ACKs so fast that, in a burst, a 4.1.9 kernel sends
   * batches of one session each; one datagram per batch then costs the main thread a send each (about 2.5 ms
   * under emulation), the queue fills, the ACKs are held, and a 4.1.9 kernel loses what it cannot queue
   * (VM lab, 4 000 flows: BENCHMARKS.md "Kernel thread"). A datagram of several batches is exactly what a kernel
   * batch is — whole entries, one after the other — so every receiver, upstream's included, takes it as one.
   *
   * On a framed wire, a batch too large for one packet once framed is cut at a session boundary: its first
   * entries fill the frame (alone, or after the batches before it), the rest stays first in the queue and
   * leaves at the head of the next frame. Each frame is a valid frame of whole entries (its own sequence, and
   * with a key its own counter and tag), so receivers need nothing new. Why cut rather than let IP fragment
   * it: fragments are what firewalls drop — with a key, every full batch would then be lost without a trace on
   * either router. Why carry the rest over rather than send it alone: under load the frames stay full, so
   * the cut adds one datagram per ~17 batches instead of one per batch, and costs no more than the fragments
   * at saturation, where a cut per batch cost a third of the throughput (BENCHMARKS.md "What fits one packet").
   */
  #takeNext(): QueuedBatch | undefined {
    const first = this.#queue[0];
    if (!first) return undefined;
    const piece = this.#cutToFit(first, this.#splitAbove ?? 0);
    if (piece) return piece;
    this.#queue.shift();
    const parts = [first.payload];
    let bytes = first.payload.length;
    let sessions = first.sessions;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      if (bytes + head.payload.length <= this.#coalesceMax) {
        this.#queue.shift();
        parts.push(head.payload);
        bytes += head.payload.length;
        sessions += head.sessions;
        continue;
      }
      // A batch that will be cut anyway fills what room is left.
      const piece = this.#cutToFit(head, this.#coalesceMax - bytes);
      if (piece) {
        parts.push(piece.payload);
        sessions += piece.sessions;
      }
      break;
    }
    return parts.length === 1 ? first : { payload: concatBytes(parts), sessions };
  }

  /**
   * When `batch` (the queue's head) is one a framed wire cuts — longer than one packet, whole entries — and
   * `room` holds at least one of its entries: its first entries that fit in `room` (see {@link #cut}). Else
   * undefined, having done nothing.
   */
  #cutToFit(batch: QueuedBatch, room: number): QueuedBatch | undefined {
    if (this.#splitAbove === undefined || batch.payload.length <= this.#splitAbove) return undefined;
    const entryBytes = this.#cuttable(batch);
    return entryBytes > 0 && room >= entryBytes ? this.#cut(batch, entryBytes, room) : undefined;
  }

  /** The entry size of a queued batch that may be cut (whole entries of the local format, two or more), else 0. */
  #cuttable(batch: QueuedBatch): number {
    if (batch.sessions <= 1) return 0;
    const format = this.kernel.format;
    const entryBytes = format ? ENTRY_SIZE[format] : batch.payload.length / batch.sessions;
    return batch.payload.length === entryBytes * batch.sessions ? entryBytes : 0;
  }

  /**
   * The first entries of `batch` (the queue's head) that fit in `room` bytes; the rest replaces it at the head.
   * Counts and reports the batch the first time it is cut.
   */
  #cut(batch: QueuedBatch, entryBytes: number, room: number): QueuedBatch {
    const [piece] = splitAtEntries(batch.payload, entryBytes, room);
    const taken = piece.length / entryBytes;
    this.#queue[0] = {
      payload: batch.payload.subarray(piece.length),
      sessions: batch.sessions - taken,
      cut: true,
    };
    if (!batch.cut) {
      this.stats.add("NET_BATCHES_SPLIT");
      this.#tooLarge(batch.payload, batch.sessions);
    }
    return { payload: piece, sessions: taken };
  }

  /**
   * Says, once an hour, that a batch does not fit one packet (cut on a framed wire, else fragmented), and which
   * Jool setting makes every batch fit.
   */
  #tooLarge(payload: Uint8Array, sessions: number): void {
    // Asked before the line is built: this runs for every such batch, at line rate.
    if (this.#fitLog.admit("fit") === undefined) return;
    const link = this.#link!;
    const format = this.kernel.format;
    const framed = this.codec.overhead > 0 ? `, ${payload.length + this.codec.overhead} framed` : "";
    const what =
      `a batch of ${sessions} sessions (${payload.length} bytes${framed}) does not fit one packet on ` +
      `${linkText(link)}, which carries ${packetPayloadLimit(link)} bytes of UDP payload`;
    const how = this.#splitAbove !== undefined && this.#cuttable({ payload, sessions }) > 0
      ? ": such batches are cut at a session boundary, the rest leaving at the head of the next frame " +
        "(NET_BATCHES_SPLIT)"
      : ": it leaves in IP fragments (NET_SENT_FRAGMENTED)";
    const fix = format
      ? `; so that each batch fits one packet, set on this router: ${
        fitSetting(this.#instance, batchFit(link, this.codec.overhead, format), format)
      }`
      : "";
    this.log.warn(what + how + fix);
  }

  async #fromNet(): Promise<void> {
    for await (const datagram of this.net.receive()) {
      const format = this.kernel.format;
      if (format === undefined) {
        this.#dropped("net_format_unknown", "the local kernel's session format is not known yet");
        continue;
      }
      const decoded = this.codec.decode(datagram, format);
      if (decoded.ok === "handled") continue;
      if (!decoded.ok) {
        this.#dropped(decoded.reason, decoded.detail);
        continue;
      }
      let { payload, sessions } = decoded;
      if (this.#pool4) {
        // The one place the pool4 check runs: after validation, before JOOLD_ADD (docs/protocol.md §11.2).
        const checked = checkPool4(payload, format, this.#pool4());
        if (checked.outside > 0) {
          this.stats.add("NET_SESSIONS_OUTSIDE_POOL4", checked.outside);
          const what =
            `${checked.outside} of ${sessions} sessions outside the local pool4 (first: ${checked.firstOutside})`;
          if (checked.sessions === 0) {
            this.#dropped("net_outside_pool4", what);
            continue;
          }
          const line = this.#limiter.line("pool4_partial", `dropped ${what}; the others go to the kernel`);
          if (line) this.log.warn(line);
          payload = checked.payload;
          sessions = checked.sessions;
        }
      }
      this.stats.add("NET_RCVD_SESSIONS", sessions);
      this.kernel.addSessions(payload, sessions);
    }
  }

  #dropped(reason: DropReason, detail: string): void {
    this.stats.drop(reason);
    const line = this.#limiter.line(reason, `dropped (${reason}): ${detail}`);
    if (line) this.log.warn(line);
  }
}
