/**
 * Rate-limited logging for events that can repeat at line rate (drops, error replies): the first event of a key
 * is logged at once, later ones at most once per interval with the number suppressed meanwhile.
 * @module
 */

/** Decides when a repeated event may be logged again. */
export class LogRateLimiter {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  /**
   * A limiter allowing one line per key every `intervalMs`.
   * @param intervalMs minimum time between two lines of one key
   * @param now clock, injectable for tests
   */
  constructor(private readonly intervalMs = 10_000, private readonly now: () => number = Date.now) {}

  /**
   * Returns undefined when the event must stay silent (it is counted as suppressed), otherwise the number of
   * events of this key suppressed since the last line (0 the first time).
   */
  admit(key: string): number | undefined {
    const t = this.now();
    const entry = this.#last.get(key);
    if (entry && t - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(key, { at: t, suppressed: 0 });
    return suppressed;
  }

  /**
   * The line to log for this event of `key`: `message`, followed by how many of its kind were suppressed since
   * the last line when any were (one wording everywhere); undefined when the event must stay silent.
   */
  line(key: string, message: string): string | undefined {
    const suppressed = this.admit(key);
    if (suppressed === undefined) return undefined;
    return suppressed > 0 ? `${message} (${suppressed} more since the last line)` : message;
  }
}
