/**
 * The relay between the kernel channel and the net channel: each kernel batch → one datagram; each datagram →
 * validated by the wire codec → one JOOLD_ADD. Every drop is counted by reason.
 *
 * Queues: kernel → net goes through a bounded queue drained by one sender (a datagram send is asynchronous);
 * its capacity caps memory at `netQueueCapacity` × 2 KiB. When it passes three quarters full, the relay asks
 * the kernel channel to hold its next ACK until it is back under a quarter: the kernel sends one batch per
 * ACK, so its own queue absorbs the burst instead of joold dropping batches the kernel considers delivered.
 * `kernel_queue_full` remains for a kernel that flushes without ACKs (its deadline).
 * The sender starts from a timer task, never from the kernel channel's own microtasks: the kernel channel
 * reads its socket synchronously until it is empty, ACKing each batch, and the kernel answers each ACK with
 * its next batch at once; a datagram send between two of those ACKs would hold the kernel's queue (on 4.1.9,
 * one batch deep: spec §2.3) for the length of a send. So the ACKs of a burst go out back to back, then the
 * datagrams (a 0-ms timer: they leave about a millisecond after the drain). Between two datagrams the sender
 * asks whether a batch has arrived that the kernel channel, parked in its poll, will only read after an
 * event-loop turn, and if so gives it that turn first: Deno settles a datagram send that completed at once
 * without one, so a run of sends would otherwise hold that batch's ACK for all of them (measured under
 * emulation: ~2.5 ms a send).
 * Net → kernel needs no queue: JOOLD_ADD is a synchronous netlink send, so the receive loop itself applies
 * back-pressure and the socket's receive buffer is the only queue.
 * @module
 */
import type { Logger } from "./log.ts";
import { LogRateLimiter } from "./rate_limit.ts";
import type { SessionFormat } from "./session/format.ts";
import type { DropReason, Stats } from "./stats.ts";
import type { WireCodec } from "./wire.ts";

/** What the relay needs of the kernel channel. */
export interface KernelSide {
  readonly format: SessionFormat | undefined;
  /** Whether a kernel batch waits that the kernel side will read (and ACK) only after an event-loop turn. */
  hasPendingBatch(): boolean;
  addSessions(payload: Uint8Array, sessions: number): void;
  run(
    onBatch: (payload: Uint8Array, sessions: number) => void,
    backpressure?: () => Promise<void> | undefined,
  ): Promise<void>;
}

/** What the relay needs of the net channel. */
export interface NetSide {
  send(datagram: Uint8Array, sessions?: number): Promise<boolean>;
  /** Datagrams, each valid until the next iteration (the net channel reuses its receive buffer). */
  receive(): AsyncIterable<Uint8Array>;
}

/** Relay tuning. */
export interface RelayOptions {
  /** Kernel batches waiting for the network, at most (default 1024). */
  readonly netQueueCapacity?: number;
}

/** Moves session batches both ways until the channels close. */
export class Relay {
  readonly #queue: { datagram: Uint8Array; sessions: number }[] = [];
  #wake: (() => void) | undefined;
  /** The timer task that will wake the sender, while one is pending. */
  #wakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves the pending back-pressure promise once the queue has drained. */
  #drained: { promise: Promise<void>; resolve: () => void } | undefined;
  #stopped = false;
  readonly #capacity: number;
  readonly #limiter = new LogRateLimiter();

  constructor(
    private readonly kernel: KernelSide,
    private readonly net: NetSide,
    private readonly codec: WireCodec,
    private readonly stats: Stats,
    private readonly log: Logger,
    options: RelayOptions = {},
  ) {
    this.#capacity = options.netQueueCapacity ?? 1024;
  }

  /**
   * Runs until either channel ends (they end when closed; one ending alone means it failed or its peer went
   * away, and the relay cannot go on half-open). Rejects with the channel's error.
   */
  async run(): Promise<void> {
    const sender = this.#sendLoop();
    try {
      await Promise.race([
        this.kernel.run(
          (payload, sessions) => this.#fromKernel(payload, sessions),
          () => this.#backpressure(),
        ),
        this.#fromNet(),
      ]);
    } finally {
      this.stop();
      await sender;
    }
  }

  /** Stops the sender loop (the channels are closed by their owner). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wake?.();
    this.#drained?.resolve();
  }

  /** A promise while the network queue is above its high watermark (see the module doc). */
  #backpressure(): Promise<void> | undefined {
    if (this.#drained) return this.#drained.promise;
    if (this.#stopped || this.#queue.length < Math.ceil(this.#capacity * 3 / 4)) return undefined;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#drained = { promise, resolve };
    return promise;
  }

  #fromKernel(payload: Uint8Array, sessions: number): void {
    if (this.#queue.length >= this.#capacity) {
      this.#dropped("kernel_queue_full", `network send queue full (${this.#capacity} datagrams)`);
      return;
    }
    this.#queue.push({ datagram: this.codec.encode(payload), sessions });
    if (this.#wake && this.#wakeTimer === undefined) this.#wakeTimer = setTimeout(this.#wakeSender, 0);
  }

  /** Timer task: the kernel channel's current drain is over (see the module doc). */
  readonly #wakeSender = (): void => {
    this.#wakeTimer = undefined;
    this.#wake?.();
  };

  async #sendLoop(): Promise<void> {
    while (true) {
      const next = this.#queue.shift();
      if (next) {
        if (this.#drained && this.#queue.length <= Math.floor(this.#capacity / 4)) {
          this.#drained.resolve();
          this.#drained = undefined;
        }
        if (this.kernel.hasPendingBatch()) await new Promise((resolve) => setTimeout(resolve, 0));
        await this.net.send(next.datagram, next.sessions);
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
      if (!decoded.ok) {
        this.#dropped(decoded.reason, decoded.detail);
        continue;
      }
      this.stats.add("NET_RCVD_SESSIONS", decoded.sessions);
      this.kernel.addSessions(decoded.payload, decoded.sessions);
    }
  }

  #dropped(reason: DropReason, detail: string): void {
    this.stats.drop(reason);
    const suppressed = this.#limiter.admit(reason);
    if (suppressed === undefined) return;
    const more = suppressed > 0 ? ` (${suppressed} more since the last line)` : "";
    this.log.warn(`dropped (${reason}): ${detail}${more}`);
  }
}
