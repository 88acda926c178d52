/**
 * Replay windows on the authentication trailer's frame counter, one per sender id (docs/protocol.md §10.6): a
 * counter is taken once, and a counter {@link REPLAY_WINDOW} or more behind the highest taken is refused (as
 * IPsec's anti-replay window, RFC 4303 §3.4.3), so frames reordered on the link still pass.
 *
 * A sender's window is kept for `retainMs` after its last frame — longer than the freshness window, so by the
 * time it is forgotten every frame it ever sent is stale and refused on its timestamp; a gone peer's id cannot
 * be replayed.
 * @module
 */

/** Counters remembered behind the highest one taken, per sender. */
export const REPLAY_WINDOW = 1024;

/** What {@link SenderWindows.check} says of a counter. */
export type ReplayVerdict = "fresh" | "duplicate" | "behind" | "full";

class Window {
  highest = -1;
  readonly seen = new Uint32Array(REPLAY_WINDOW / 32);
  constructor(public lastSeen: number) {}

  has(counter: number): boolean {
    const bit = counter % REPLAY_WINDOW;
    return (this.seen[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  set(counter: number, on: boolean): void {
    const bit = counter % REPLAY_WINDOW;
    if (on) this.seen[bit >>> 5] |= 1 << (bit & 31);
    else this.seen[bit >>> 5] &= ~(1 << (bit & 31));
  }
}

/** Every sender's replay window, bounded in number and forgotten `retainMs` after the sender's last frame. */
export class SenderWindows {
  readonly #windows = new Map<number, Window>();

  /** Windows kept `retainMs` after each sender's last frame; at most `maxSenders` at once. */
  constructor(private readonly retainMs: number, private readonly maxSenders = 4096) {}

  /** Senders whose windows are kept. */
  get size(): number {
    return this.#windows.size;
  }

  /**
   * Whether `counter` of `sender` may be taken (read only: the caller {@link take}s it once every other check
   * passed). "full": a new sender while {@link maxSenders} windows are kept and none can be forgotten yet.
   */
  check(sender: number, counter: number, now: number): ReplayVerdict {
    const window = this.#windows.get(sender);
    if (!window) {
      if (this.#windows.size < this.maxSenders) return "fresh";
      this.sweep(now);
      return this.#windows.size < this.maxSenders ? "fresh" : "full";
    }
    if (counter > window.highest) return "fresh";
    if (window.highest - counter >= REPLAY_WINDOW) return "behind";
    return window.has(counter) ? "duplicate" : "fresh";
  }

  /** Records `counter` of `sender` as taken at `now`. */
  take(sender: number, counter: number, now: number): void {
    let window = this.#windows.get(sender);
    if (!window) {
      window = new Window(now);
      this.#windows.set(sender, window);
    }
    window.lastSeen = now;
    if (counter > window.highest) {
      if (window.highest < 0 || counter - window.highest >= REPLAY_WINDOW) window.seen.fill(0);
      else for (let c = window.highest + 1; c < counter; c++) window.set(c, false);
      window.highest = counter;
    }
    window.set(counter, true);
  }

  /** Forgets the windows of senders silent for longer than `retainMs`. */
  sweep(now: number): void {
    for (const [sender, window] of this.#windows) {
      if (now - window.lastSeen > this.retainMs) this.#windows.delete(sender);
    }
  }
}
