/**
 * How the kernel thread hands datagrams to the main thread: a ring of slots in shared memory. The thread
 * receives each datagram straight into a free slot and publishes it with one atomic store; the main thread
 * copies it out (into a buffer it reuses) and frees the slot. Nothing is allocated on the thread's side per
 * datagram, so its isolate never collects garbage in the middle of a burst: with a copy and a postMessage per
 * batch it ran a scavenge every ~500 batches, 0.05–0.7 ms on a host and 10–20 ms under emulation, and each one
 * held an ACK (VM lab, Jool 4.1.9; BENCHMARKS.md "Kernel thread").
 *
 * The main thread is woken only when it said it would wait (a flag it sets, then re-checks the ring, so a
 * datagram published meanwhile is never missed), by a byte the thread sends on a socket pair
 * (`lib/kernel/thread.ts` says why that and not a message). A full ring stops the thread from reading: the
 * kernel's batches then wait unACKed in the socket, and the kernel with them, as with any back-pressure.
 * @module
 */
import type { KernelDatagram } from "./transport.ts";

/**
 * Slots in the ring. A power of two. Deep enough that the main thread, slower than the kernel thread under
 * emulation, never fills it in a burst: with 64 slots a full ring held the ACKs for up to 43 ms in a 200-flow
 * burst on Jool 4.1.9 (VM lab), and the kernel lost what it could not queue meanwhile.
 */
export const HANDOFF_SLOTS = 1024;
/**
 * Bytes per slot: room for every batch a kernel sends with its defaults (about 1.5 KiB: 36 format-C entries
 * on ≥ 4.1.13; on 4.1.9 and 4.1.10 `ss-max-payload`, 1 452 by default). A longer datagram takes two slots
 * ({@link HANDOFF_DATAGRAM_BYTES}). 2 MiB in all, resident for good: the kernel thread makes every page resident
 * before the first batch (`lib/kernel/thread.ts` says why), so each byte here is RssAnon of an idle daemon;
 * 4-KiB slots cost 4 MiB for the same depth in datagrams (BENCHMARKS.md "Host relay, A's own CPU and memory").
 */
export const HANDOFF_SLOT_BYTES = 2048;

/**
 * The longest datagram handed over whole: two slots (4.1.9 and 4.1.10 build a batch of up to the operator's
 * `ss-max-payload`). A datagram longer than that arrives cut, and is dropped and counted as malformed.
 */
export const HANDOFF_DATAGRAM_BYTES = 2 * HANDOFF_SLOT_BYTES;

/** Slots a datagram of `length` bytes takes (a cut one: two). */
function slotsOf(length: number): number {
  return length > HANDOFF_SLOT_BYTES ? 2 : 1;
}

/**
 * Indices in the metadata: datagrams published and taken (both counting up), the main thread's wait flag, the
 * kernel thread's wait flag (a full ring).
 */
const HEAD = 0;
const TAIL = 1;
const WAITING = 2;
const ROOM_WAITING = 3;
/** Then each slot's length, then whether each slot was ACKed. */
const LENGTHS = 4;

/** The shared memory of one hand-off (sent to the kernel thread in its init message). */
export interface HandoffMemory {
  /** The slots' bytes. */
  readonly ring: SharedArrayBuffer;
  /** Head, tail, wait flag, then each slot's length and whether it was ACKed. */
  readonly meta: Int32Array;
  /** Slots in the ring (a power of two). */
  readonly slots: number;
}

/**
 * Allocates the shared memory of a hand-off of `slots` slots (a power of two, at least 2: a datagram may take
 * two; {@link HANDOFF_SLOTS} by default). The bytes run one slot past the last, where a long datagram in the
 * last slot ends, so every datagram is contiguous.
 */
export function createHandoff(slots = HANDOFF_SLOTS): HandoffMemory {
  if (slots < 2 || (slots & (slots - 1)) !== 0) {
    throw new RangeError(`hand-off slots: ${slots} is not a power of two of at least 2`);
  }
  return {
    ring: new SharedArrayBuffer(slots * HANDOFF_SLOT_BYTES + HANDOFF_DATAGRAM_BYTES - HANDOFF_SLOT_BYTES),
    meta: new Int32Array(new SharedArrayBuffer((LENGTHS + 2 * slots) * 4)),
    slots,
  };
}

/** The kernel thread's end: fills and publishes slots. Allocates nothing after construction. */
export class HandoffWriter {
  readonly #meta: Int32Array;
  readonly #capacity: number;
  readonly #mask: number;
  readonly #acked: number;
  /** One view per slot, made once: {@link HANDOFF_DATAGRAM_BYTES} from the slot's start. */
  readonly #slots: Uint8Array<SharedArrayBuffer>[];
  #head = 0;

  /** The writer of `memory` (one per hand-off). */
  constructor(memory: HandoffMemory) {
    this.#meta = memory.meta;
    this.#capacity = memory.slots;
    this.#mask = memory.slots - 1;
    this.#acked = LENGTHS + memory.slots;
    this.#head = Atomics.load(memory.meta, HEAD);
    this.#slots = Array.from(
      { length: memory.slots },
      (_, i) => new Uint8Array(memory.ring, i * HANDOFF_SLOT_BYTES, HANDOFF_DATAGRAM_BYTES),
    );
  }

  /**
   * Where to receive the next datagram ({@link HANDOFF_DATAGRAM_BYTES}), or undefined while the ring is full:
   * fewer than two slots free, since the datagram's length is known only once it is received.
   */
  next(): Uint8Array<SharedArrayBuffer> | undefined {
    if (this.#capacity - (this.#head - Atomics.load(this.#meta, TAIL)) < 2) return undefined;
    return this.#slots[this.#head & this.#mask];
  }

  /**
   * Publishes what {@link next} gave: `length` bytes (more than {@link HANDOFF_DATAGRAM_BYTES}: cut), ACKed on
   * arrival or not. It takes one slot, or two when longer than one.
   */
  publish(length: number, acked: boolean): void {
    const slot = this.#head & this.#mask;
    this.#meta[LENGTHS + slot] = length;
    this.#meta[this.#acked + slot] = acked ? 1 : 0;
    this.#head = (this.#head + slotsOf(length)) | 0;
    Atomics.store(this.#meta, HEAD, this.#head);
  }

  /** Whether the main thread waits for word of new datagrams (the flag is cleared): if so, tell it. */
  takeWaiter(): boolean {
    return Atomics.exchange(this.#meta, WAITING, 0) === 1;
  }

  /**
   * Blocks the calling thread until a slot is freed or `timeoutMs` passes. Worker threads only. The flag is set
   * before the ring is looked at again, so a slot freed in between is never missed: either the tail moved (no
   * wait) or the reader finds the flag.
   */
  waitForRoom(timeoutMs: number): void {
    Atomics.store(this.#meta, ROOM_WAITING, 1);
    const tail = Atomics.load(this.#meta, TAIL);
    if (this.#capacity - (this.#head - tail) < 2) Atomics.wait(this.#meta, TAIL, tail, timeoutMs);
    Atomics.store(this.#meta, ROOM_WAITING, 0);
  }
}

/**
 * The main thread's end: takes published datagrams in order, each copied into one buffer of its own that it
 * reuses. Why not a fresh copy per datagram: each new buffer is a backing store allocated and later freed
 * outside V8's heap (≈ 3 µs each on a host, BENCHMARKS.md "Authentication"). Copied, not a view of the ring:
 * the slot is freed at once, as before, so the kernel thread never finds the ring fuller for it.
 */
export class HandoffReader {
  readonly #meta: Int32Array;
  readonly #mask: number;
  readonly #acked: number;
  readonly #ring: Uint8Array<SharedArrayBuffer>;
  /** Where {@link take} copies each datagram: valid until the next take. */
  readonly #copy = new Uint8Array(HANDOFF_DATAGRAM_BYTES);
  #tail: number;

  /** The reader of `memory` (one per hand-off). */
  constructor(memory: HandoffMemory) {
    this.#meta = memory.meta;
    this.#mask = memory.slots - 1;
    this.#acked = LENGTHS + memory.slots;
    this.#ring = new Uint8Array(memory.ring);
    this.#tail = Atomics.load(memory.meta, TAIL);
  }

  /**
   * The next datagram, or undefined when none waits. Frees its slot. Its bytes live in the reader's buffer,
   * valid until the next take: copy them to keep them.
   */
  take(): KernelDatagram | undefined {
    if (Atomics.load(this.#meta, HEAD) === this.#tail) return undefined;
    const slot = this.#tail & this.#mask;
    const published = this.#meta[LENGTHS + slot];
    const length = Math.min(published, HANDOFF_DATAGRAM_BYTES);
    const start = slot * HANDOFF_SLOT_BYTES;
    this.#copy.set(this.#ring.subarray(start, start + length));
    const datagram: KernelDatagram = {
      bytes: this.#copy.subarray(0, length),
      acked: this.#meta[this.#acked + slot] === 1,
    };
    this.#tail = (this.#tail + slotsOf(published)) | 0;
    Atomics.store(this.#meta, TAIL, this.#tail);
    // Only when the writer waits: a notify takes a lock V8 shares between all the threads of the process, and the
    // kernel thread must not meet it held by a main thread that was preempted (lib/kernel/thread.ts).
    if (Atomics.load(this.#meta, ROOM_WAITING) === 1) Atomics.notify(this.#meta, TAIL);
    return datagram;
  }

  /**
   * Says the main thread is about to wait for word of new datagrams. False when one was published meanwhile
   * (take it instead of waiting); true: the writer's next publish will find the flag and send word.
   */
  announceWait(): boolean {
    Atomics.store(this.#meta, WAITING, 1);
    if (Atomics.load(this.#meta, HEAD) === this.#tail) return true;
    Atomics.store(this.#meta, WAITING, 0);
    return false;
  }
}
