/**
 * The relay between the kernel channel and the net channel: each kernel batch → one datagram; each datagram →
 * validated by the wire codec → one JOOLD_ADD. Every drop is counted by reason.
 *
 * Queues: kernel → net goes through a bounded queue drained by one sender (a datagram send is asynchronous);
 * its capacity caps memory at `netQueueCapacity` × 2 KiB. Each batch is copied into the datagram it will leave
 * in, a buffer the relay recycles once its send has completed ({@link OUTGOING_BYTES}). When it passes three quarters full, the relay holds
 * the kernel's ACKs (the ACK gate, `lib/kernel/ack_rule.ts` rule 4) until it is back under a quarter.
 * `kernel_queue_full` remains for a kernel that flushes without ACKs (its deadline). The ACKs themselves leave
 * from the kernel thread, so nothing the relay does on the main thread delays them. Batches that queue up
 * behind a send leave together, as one datagram of whole entries ({@link COALESCED_MAX_BYTES}).
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
import { checkPool4, type Pool4Table } from "./session/pool4_check.ts";

/**
 * The most payload bytes one datagram carries when queued batches are sent together: what a 4.1.9 kernel puts
 * in one batch at most (ss-max-payload, 1 452), so no receiver sees a datagram larger than a kernel's own
 * (upstream reads 2 048).
 */
export const COALESCED_MAX_BYTES = 1452;

/**
 * Bytes of each datagram buffer the relay recycles: room for {@link COALESCED_MAX_BYTES}, and for a batch of up
 * to upstream's 2 048-byte read on its own (a batch larger than that gets a buffer of its own size, not kept).
 * Why recycled: a buffer allocated per datagram is a backing store outside V8's heap (≈ 3 µs each on a host,
 * BENCHMARKS.md "Authentication"); the batch is copied once, into the datagram it leaves in.
 */
export const OUTGOING_BYTES = 2048;

/**
 * Free datagram buffers kept for reuse, at most. A steady stream needs two or three (one in flight, one
 * filling); a burst allocates as many as it queues, and the ones beyond these are left to the collector.
 */
const OUTGOING_KEPT = 16;

/** One datagram on its way out: whole batches copied one after the other. */
interface Outgoing {
  /** Its buffer ({@link OUTGOING_BYTES}, or a larger batch's own size). */
  readonly bytes: Uint8Array;
  /** Bytes used. */
  length: number;
  /** Sessions in it. */
  sessions: number;
  /** Kernel batches in it (what the queue's capacity counts). */
  batches: number;
}

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
  /**
   * Sends one datagram to the peers; false when it could not be sent (counted by the channel). The relay
   * reuses the datagram's buffer once the returned promise settles, not before.
   */
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
}

/** Moves session batches both ways until the channels close. */
export class Relay {
  /** Datagrams waiting for the sender, oldest first; the last one is still filling. */
  readonly #queue: Outgoing[] = [];
  /** Kernel batches in {@link #queue}. */
  #batches = 0;
  /** Buffers whose send has completed, for reuse. */
  readonly #free: Outgoing[] = [];
  #wake: (() => void) | undefined;
  #stopped = false;
  readonly #capacity: number;
  readonly #pool4: (() => Pool4Table) | undefined;
  readonly #limiter = new LogRateLimiter();

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
    return this.#batches;
  }

  /** Stops the sender loop (the channels are closed by their owner). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
    this.kernel.ackGate.release();
  }

  /**
   * Queues a kernel batch (a view valid only during this call): copied at the end of the last waiting datagram
   * while the result fits in {@link COALESCED_MAX_BYTES}, else into a datagram of its own. Why batches share a
   * datagram: the kernel thread ACKs so fast that, in a burst, a 4.1.9 kernel sends batches of one session
   * each; one datagram per batch then costs the main thread a send each (about 2.5 ms under emulation), the
   * queue fills, the ACKs are held, and a 4.1.9 kernel loses what it cannot queue (VM lab, 4 000 flows:
   * BENCHMARKS.md "Kernel thread"). A datagram of several batches is exactly what a kernel batch is — whole
   * entries, one after the other — so every receiver, upstream's included, takes it as one. Only batches that
   * wait behind a send share one: the sender takes the oldest datagram as soon as it is free.
   */
  #fromKernel(payload: Uint8Array, sessions: number): void {
    if (this.#batches >= this.#capacity) {
      this.#dropped("kernel_queue_full", `network send queue full (${this.#capacity} datagrams)`);
      return;
    }
    const last = this.#queue.length > 0 ? this.#queue[this.#queue.length - 1] : undefined;
    if (last !== undefined && last.length + payload.length <= COALESCED_MAX_BYTES) {
      last.bytes.set(payload, last.length);
      last.length += payload.length;
      last.sessions += sessions;
      last.batches++;
    } else {
      const next = this.#outgoing(payload.length);
      next.bytes.set(payload);
      next.length = payload.length;
      next.sessions = sessions;
      next.batches = 1;
      this.#queue.push(next);
    }
    this.#batches++;
    if (!this.#stopped && this.#batches >= Math.ceil(this.#capacity * 3 / 4)) this.kernel.ackGate.hold();
    this.#wake?.();
  }

  /** A datagram buffer for at least `bytes`: a recycled one when it fits. */
  #outgoing(bytes: number): Outgoing {
    if (bytes <= OUTGOING_BYTES) {
      const free = this.#free.pop();
      if (free !== undefined) return free;
    }
    return { bytes: new Uint8Array(Math.max(bytes, OUTGOING_BYTES)), length: 0, sessions: 0, batches: 0 };
  }

  async #sendLoop(): Promise<void> {
    while (true) {
      const next = this.#queue.shift();
      if (next) {
        this.#batches -= next.batches;
        if (this.#batches <= Math.floor(this.#capacity / 4) && this.kernel.ackGate.held) {
          this.kernel.ackGate.release();
        }
        await this.net.send(this.codec.encode(next.bytes.subarray(0, next.length)), next.sessions);
        // Sent (the net side has let go of the bytes): reuse the buffer.
        if (next.bytes.length === OUTGOING_BYTES && this.#free.length < OUTGOING_KEPT) this.#free.push(next);
        continue;
      }
      if (this.#stopped) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
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
