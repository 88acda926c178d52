/**
 * The file keepalived's `vrrp_track_file` reads: one integer, 0 while this daemon is in sync with every live
 * peer, the configured negative weight otherwise (README "Reliable mode"). Written only when the value
 * changes, through a temporary file and a rename (`ffi/state_file.ts`), so keepalived never reads half a
 * number.
 * @module
 */
import { errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { LogRateLimiter } from "../rate_limit.ts";
import { replaceStateFile } from "../../ffi/state_file.ts";

/** Writes the in-sync value to the track file. */
export class TrackFile {
  #written: number | undefined;
  readonly #limiter = new LogRateLimiter();
  /** Writes that failed. */
  errors = 0;
  /** Writes that succeeded. */
  writes = 0;

  /** A writer for `path`; `log` hears failed writes (rate-limited). */
  constructor(readonly path: string, private readonly log: Logger) {}

  /** The value last written (undefined before the first write). */
  get value(): number | undefined {
    return this.#written;
  }

  /** Writes `value` when it differs from the last one written (or the last write failed). */
  update(value: number): void {
    if (value === this.#written) return;
    try {
      replaceStateFile(this.path, `${value}\n`);
      this.#written = value;
      this.writes++;
    } catch (error) {
      this.errors++;
      this.#written = undefined;
      const line = this.#limiter.line(
        "track",
        `cannot write the track file ${this.path} (${
          errorMessage(error)
        }); keepalived keeps its last value: ` +
          `check the directory exists and is writable`,
      );
      if (line) this.log.error(line);
    }
  }
}
