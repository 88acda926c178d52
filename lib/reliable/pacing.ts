/**
 * The reliable mode's live pacing (docs/design.md "Reliable mode", Pacing): a sender that overruns a peer's socket makes it
 * lose datagrams, which then cost a NACK, a resend and — when the resend buffer has moved on — a replay of the
 * whole cache, all on the same CPUs as the live traffic (BENCHMARKS.md "Reliable mode", cost at saturation).
 * A NACK for one of our sequences is the only sign of it the wire carries, so it is the congestion signal:
 * the send rate is cut to a fraction of what was actually sent, at most once per {@link CUT_INTERVAL_MS},
 * grows back by a fixed share per tick without a new loss, and the limit is lifted once it no longer binds.
 * Only a new loss counts (a NACK above every sequence NACKed before): a NACK repeated for the same gap says
 * nothing new. Pure: the caller passes the time (ms).
 * @module
 */

/** A new loss cuts the rate at most this often: the NACK of a loss arrives ≥ 30 ms (reorder wait) after it. */
export const CUT_INTERVAL_MS = 100;
/** A cut sets the rate to this share of the rate actually sent. */
export const CUT_FACTOR = 0.7;
/** The rate never goes below this many datagrams/s (a lossy link is not a slow peer). */
export const MIN_RATE = 1000;
/** Growth per tick without a new loss. */
export const GROWTH_PER_TICK = 1.02;
/** The limit is lifted when it exceeds what is sent by this factor (it no longer binds). */
export const LIFT_FACTOR = 4;
/** Burst allowed, in ms of the current rate. */
const BURST_MS = 20;
/** Window of the measured send rate (ms). */
const MEASURE_MS = 100;

/** Counters of the pacing, for the stats views. */
export interface PacingCounters {
  /** Rate cuts made (new losses seen by a peer). */
  cuts: number;
  /** Times the limit was lifted. */
  lifts: number;
  /** Live sends that waited for the pace. */
  waits: number;
}

/** The live send rate allowed by peers' NACKs, as a token bucket. */
export class LivePacer {
  #rate = Infinity;
  #tokens = 0;
  #tokensAt = 0;
  #lastCut = -Infinity;
  #nackedUpTo = 0;
  #windowStart = 0;
  #windowCount = 0;
  #measured = 0;
  /** Counters, for the stats views. */
  readonly counters: PacingCounters = { cuts: 0, lifts: 0, waits: 0 };

  /** The rate allowed now, datagrams/s (Infinity: no limit). */
  get rate(): number {
    return this.#rate;
  }

  /** The send rate measured over the last window, datagrams/s. */
  get measured(): number {
    return this.#measured;
  }

  /** A peer NACKed our sequences `first`..`last` at `now`. */
  nacked(first: number, last: number, now: number): void {
    if (last <= this.#nackedUpTo) return; // a NACK repeated for a loss already counted
    const fresh = first > this.#nackedUpTo;
    this.#nackedUpTo = last;
    if (!fresh || now - this.#lastCut < CUT_INTERVAL_MS) return;
    this.#lastCut = now;
    this.#measure(now);
    const sent = this.#measured > 0 ? this.#measured : MIN_RATE;
    this.#rate = Math.max(MIN_RATE, Math.min(this.#rate, sent) * CUT_FACTOR);
    this.#tokens = Math.min(this.#tokens, 0);
    this.#tokensAt = now;
    this.counters.cuts++;
  }

  /** Our sequences start again (a new sender id): NACKs are counted afresh. */
  restart(): void {
    this.#nackedUpTo = 0;
  }

  /** The timers' tick at `now`: growth without a new loss, and the lift once the limit does not bind. */
  tick(now: number): void {
    this.#measure(now);
    if (this.#rate === Infinity || now - this.#lastCut < CUT_INTERVAL_MS) return;
    this.#rate *= GROWTH_PER_TICK;
    if (this.#rate > LIFT_FACTOR * Math.max(this.#measured, MIN_RATE)) {
      this.#rate = Infinity;
      this.counters.lifts++;
    }
  }

  /** One datagram left at `now` (live, resent or control: all of them fill the peer's socket). */
  sent(now: number): void {
    this.#windowCount++;
    if (this.#rate === Infinity) return;
    this.#refill(now);
    this.#tokens--;
  }

  /** How long (ms) a live datagram must wait at `now` before it may leave; 0: now. */
  delay(now: number): number {
    if (this.#rate === Infinity) return 0;
    this.#refill(now);
    if (this.#tokens >= 1) return 0;
    this.counters.waits++;
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
  }

  #refill(now: number): void {
    this.#tokens = Math.min(
      this.#tokens + ((now - this.#tokensAt) * this.#rate) / 1000,
      1 + this.#rate * BURST_MS / 1000,
    );
    this.#tokensAt = now;
  }

  #measure(now: number): void {
    const elapsed = now - this.#windowStart;
    if (elapsed < MEASURE_MS) return;
    this.#measured = (this.#windowCount * 1000) / elapsed;
    this.#windowStart = now;
    this.#windowCount = 0;
  }
}
