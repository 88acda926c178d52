/**
 * The frames this daemon sent last, by sequence, so a NACK can be answered with the same bytes
 * (docs/protocol.md §10.3). A ring of fixed capacity: memory is capacity × one datagram at most.
 *
 * The bytes are copied into one preallocated buffer of fixed slots rather than kept as the frames themselves:
 * a kept frame lives for the last `capacity` sends, long enough for V8 to copy every one of them out of the
 * young generation into the old one and then collect it there; a copy into the ring costs one memcpy and the
 * frame dies young (BENCHMARKS.md "Reliable mode", cost at saturation). A frame larger than a slot (none the
 * relay makes; kept for safety) is kept as it is.
 * @module
 */

/** Bytes of one slot: a REPLAY frame's 24-byte header around the relay's largest datagram (1 452 bytes). */
export const RESEND_SLOT_BYTES = 1476;

/** The last `capacity` sequenced frames sent. */
export class ResendBuffer {
  /** Slot bytes; the ring is made on the first frame kept (a daemon that never sends holds none). */
  #bytes: Uint8Array | undefined;
  readonly #lengths: Uint16Array;
  readonly #seqs: Uint32Array;
  /** Frames larger than a slot, by slot. */
  readonly #large = new Map<number, Uint8Array>();
  #newest = 0;

  /** A buffer keeping the last `capacity` frames. */
  constructor(readonly capacity: number) {
    this.#lengths = new Uint16Array(capacity);
    this.#seqs = new Uint32Array(capacity);
  }

  /** Keeps a copy of `frame`, sent with sequence `seq` (sequences are kept in increasing order). */
  keep(seq: number, frame: Uint8Array): void {
    const slot = seq % this.capacity;
    this.#large.delete(slot);
    if (frame.length > RESEND_SLOT_BYTES) this.#large.set(slot, frame);
    else {
      this.#bytes ??= new Uint8Array(this.capacity * RESEND_SLOT_BYTES);
      this.#bytes.set(frame, slot * RESEND_SLOT_BYTES);
      this.#lengths[slot] = frame.length;
    }
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

  /**
   * A copy of the frame of `seq` (its own bytes, safe to hand to an asynchronous send while the ring moves
   * on), or undefined when it was never sent or has been overwritten.
   */
  get(seq: number): Uint8Array | undefined {
    const slot = seq % this.capacity;
    if (this.#seqs[slot] !== seq) return undefined;
    const large = this.#large.get(slot);
    if (large) return large;
    const at = slot * RESEND_SLOT_BYTES;
    return this.#bytes!.slice(at, at + this.#lengths[slot]);
  }
}
