/**
 * The frames this daemon sent last, by sequence, so a NACK can be answered with the same bytes
 * (docs/protocol.md §10.3). A ring of fixed capacity: memory is capacity × one datagram at most.
 * @module
 */

/** The last `capacity` sequenced frames sent. */
export class ResendBuffer {
  readonly #frames: (Uint8Array | undefined)[];
  readonly #seqs: Uint32Array;
  #newest = 0;

  /** A buffer keeping the last `capacity` frames. */
  constructor(readonly capacity: number) {
    this.#frames = new Array(capacity);
    this.#seqs = new Uint32Array(capacity);
  }

  /** Keeps `frame`, sent with sequence `seq` (sequences are kept in increasing order). */
  keep(seq: number, frame: Uint8Array): void {
    const slot = seq % this.capacity;
    this.#frames[slot] = frame;
    this.#seqs[slot] = seq;
    if (seq > this.#newest) this.#newest = seq;
  }

  /** The oldest sequence still kept (0: nothing kept). */
  get oldest(): number {
    if (this.#newest === 0) return 0;
    return Math.max(1, this.#newest - this.capacity + 1);
  }

  /** The newest sequence kept (0: none). */
  get newest(): number {
    return this.#newest;
  }

  /** The frame of `seq`, or undefined when it was never sent or has been overwritten. */
  get(seq: number): Uint8Array | undefined {
    const slot = seq % this.capacity;
    return this.#seqs[slot] === seq ? this.#frames[slot] : undefined;
  }
}
