/**
 * One peer's sequence numbers as this daemon receives them: what is expected next, which sequences are missing,
 * when to NACK them and when to give up (docs/protocol.md §10.3). Pure: the caller passes the time.
 * @module
 */

/** What {@link SequenceTracker.accept} made of a sequence. */
export type Arrival = "next" | "ahead" | "filled" | "duplicate";

/** NACK timing. */
export interface NackTiming {
  /** How long a gap may wait for a reordered datagram before its first NACK (ms). */
  readonly reorderMs: number;
  /** Time between NACKs of the same sequence (ms). */
  readonly retryMs: number;
  /** NACKs of one sequence before it is declared lost. */
  readonly maxNacks: number;
  /** The most sequences one gap may open; a larger jump is lost at once (the sender's resend buffer). */
  readonly maxGap: number;
}

/** What is due now: ranges to NACK and sequences given up. */
export interface NackPlan {
  /** Contiguous ranges (first, last) to NACK now. */
  readonly nack: [number, number][];
  /** How many sequences were declared lost now. */
  readonly lost: number;
}

interface Missing {
  /** When the gap was seen. */
  readonly since: number;
  /** NACKs sent for it. */
  nacks: number;
  /** When the last NACK left. */
  lastNack: number;
}

/** Counters of one peer's sequence. */
export interface SequenceCounters {
  /** Sequenced frames taken (not duplicates). */
  received: number;
  /** Sequences found missing. */
  gaps: number;
  /** Frames seen twice (or older than the first one seen). */
  duplicates: number;
  /** Missing sequences that arrived before any NACK (reordering). */
  reordered: number;
  /** Missing sequences that arrived after a NACK (resent). */
  recovered: number;
  /** Missing sequences given up (no answer, too old for the sender's buffer, or a jump beyond maxGap). */
  lost: number;
  /** NACK ranges sent. */
  nacks: number;
}

/** Expected sequence, gaps, duplicates and reordering of one sender. */
export class SequenceTracker {
  /** The next sequence expected; undefined until the first one. */
  #expected: number | undefined;
  readonly #missing = new Map<number, Missing>();
  /** Counters, for the stats views. */
  readonly counters: SequenceCounters = {
    received: 0,
    gaps: 0,
    duplicates: 0,
    reordered: 0,
    recovered: 0,
    lost: 0,
    nacks: 0,
  };

  /** A tracker with the given NACK timing. */
  constructor(private readonly timing: NackTiming) {}

  /** The next sequence expected (undefined before any). */
  get expected(): number | undefined {
    return this.#expected;
  }

  /** Sequences still missing. */
  get missing(): number {
    return this.#missing.size;
  }

  /** The highest sequence taken so far (0 before any). */
  get latest(): number {
    return this.#expected === undefined ? 0 : this.#expected - 1;
  }

  /**
   * Takes sequence `seq` at `now`. The first sequence ever seen starts the count (what came before it is the
   * replay's job). Returns what it was; a duplicate must not be delivered again.
   */
  accept(seq: number, now: number): Arrival {
    if (this.#expected === undefined || seq === this.#expected) {
      this.#expected = seq + 1;
      this.counters.received++;
      return "next";
    }
    if (seq > this.#expected) {
      this.#open(this.#expected, seq - 1, now);
      this.#expected = seq + 1;
      this.counters.received++;
      return "ahead";
    }
    const missing = this.#missing.get(seq);
    if (!missing) {
      this.counters.duplicates++;
      return "duplicate";
    }
    this.#missing.delete(seq);
    this.counters.received++;
    if (missing.nacks === 0) this.counters.reordered++;
    else this.counters.recovered++;
    return "filled";
  }

  /**
   * The sender says its latest sequence is `latest` (a heartbeat): what we have not seen up to it is missing
   * (a lost tail has no later datagram to reveal it). Before any sequence, it only sets the start.
   */
  observeLatest(latest: number, now: number): void {
    if (latest === 0) return;
    if (this.#expected === undefined) {
      this.#expected = latest + 1;
      return;
    }
    if (latest >= this.#expected) {
      this.#open(this.#expected, latest, now);
      this.#expected = latest + 1;
    }
  }

  /** The sender no longer has `first`..`last`: the ones still missing are lost. Returns how many. */
  forget(first: number, last: number): number {
    let lost = 0;
    for (const seq of [...this.#missing.keys()]) {
      if (seq >= first && seq <= last) {
        this.#missing.delete(seq);
        lost++;
      }
    }
    this.counters.lost += lost;
    return lost;
  }

  /** What to NACK at `now`, and which sequences have had all their NACKs (then lost). */
  due(now: number): NackPlan {
    const { reorderMs, retryMs, maxNacks } = this.timing;
    const due: number[] = [];
    let lost = 0;
    for (const [seq, m] of this.#missing) {
      if (m.nacks === 0 ? now - m.since < reorderMs : now - m.lastNack < retryMs) continue;
      if (m.nacks >= maxNacks) {
        this.#missing.delete(seq);
        lost++;
        continue;
      }
      m.nacks++;
      m.lastNack = now;
      due.push(seq);
    }
    this.counters.lost += lost;
    due.sort((a, b) => a - b);
    const nack: [number, number][] = [];
    for (const seq of due) {
      const last = nack[nack.length - 1];
      if (last && last[1] === seq - 1) last[1] = seq;
      else nack.push([seq, seq]);
    }
    this.counters.nacks += nack.length;
    return { nack, lost };
  }

  #open(first: number, last: number, now: number): void {
    const count = last - first + 1;
    this.counters.gaps += count;
    if (count > this.timing.maxGap) {
      // More than the sender can have kept: no point asking. The caller sees it as lost (a resync).
      this.counters.lost += count;
      this.#lostNow += count;
      return;
    }
    for (let seq = first; seq <= last; seq++) this.#missing.set(seq, { since: now, nacks: 0, lastNack: 0 });
  }

  #lostNow = 0;

  /** Sequences lost by a jump beyond maxGap since the last call (then 0). */
  takeJumpLosses(): number {
    const lost = this.#lostNow;
    this.#lostNow = 0;
    return lost;
  }
}
