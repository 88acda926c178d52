/**
 * The session cache of the reliable mode (docs/design.md "Reliable mode"): every session this daemon's kernel
 * sent it and every session peers sent it, one per key (addresses, ports, protocol), each with the daemon id
 * that last sent it (its origin) and its own deadline. It is what a replay sends; it is bounded, and a
 * session leaves it when its expiry passes.
 *
 * Entries are kept as the local kernel's format bytes (what it sent, or what was validated for it), so a
 * replay hands the peer exactly what a live batch would have; only the expiration field is rewritten to the
 * time left.
 * @module
 */
import { ENTRY_SIZE, type SessionFormat } from "../session/format.ts";
import { HOST_LITTLE_ENDIAN } from "../jool/netlink.ts";

/** Byte ranges of the key (addresses and ports) in each format, header included; then the protocol. */
const KEY_RANGES: Readonly<Record<SessionFormat, readonly [number, number][]>> = {
  // A: src6 addr/port, dst6 addr/port, src4 addr/port, dst4 addr/port (attribute payloads only).
  A: [[12, 28], [32, 34], [44, 60], [64, 66], [76, 80], [84, 86], [96, 100], [104, 106]],
  // B: src6, dst6, src4; then src6/dst6/src4 ports.
  B: [[4, 40], [44, 50]],
  // C: src6, src4, dst4; then src6/src4/dst4 ports.
  C: [[4, 28], [32, 38]],
};

/** Where each format keeps the expiration (ms left), and its byte order. */
const EXPIRATION: Readonly<Record<SessionFormat, { at: number; little: boolean }>> = {
  A: { at: 136, little: HOST_LITTLE_ENDIAN },
  B: { at: 40, little: false },
  C: { at: 28, little: false },
};

function protoOf(entry: Uint8Array, at: number, format: SessionFormat): number {
  if (format === "A") return entry[at + 112];
  const packed = entry[at + (format === "B" ? 51 : 39)];
  return (packed >> 5) & 3;
}

/**
 * {@link KEY_RANGES} flattened to `from, to, from, to, …`: the per-entry loops read a plain number array (no
 * iterator, no destructuring per range).
 */
const FLAT_KEY_RANGES: Readonly<Record<SessionFormat, readonly number[]>> = {
  A: KEY_RANGES.A.flat(),
  B: KEY_RANGES.B.flat(),
  C: KEY_RANGES.C.flat(),
};

/** The 32-bit FNV-1a hash of the key (key bytes, then the protocol) of the entry at `at`. */
export function keyHash(bytes: Uint8Array, at: number, format: SessionFormat): number {
  const ranges = FLAT_KEY_RANGES[format];
  let hash = 0x811c9dc5;
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = at + ranges[r], end = at + ranges[r + 1]; i < end; i++) {
      hash = Math.imul(hash ^ bytes[i], 0x01000193);
    }
  }
  return Math.imul(hash ^ protoOf(bytes, at, format), 0x01000193) >>> 0;
}

/** Whether the entries at `aAt` in `a` and `bAt` in `b` have the same key. */
export function sameKey(
  a: Uint8Array,
  aAt: number,
  b: Uint8Array,
  bAt: number,
  format: SessionFormat,
): boolean {
  const ranges = FLAT_KEY_RANGES[format];
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r], end = ranges[r + 1]; i < end; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  }
  return protoOf(a, aAt, format) === protoOf(b, bAt, format);
}

/** The expiration (ms left) of the entry at `at`. */
export function expirationOf(bytes: Uint8Array, at: number, format: SessionFormat): number {
  const { at: offset, little } = EXPIRATION[format];
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at + offset, little);
}

/** Writes `value` at `at` in the byte order `little` says, without a DataView (one per replayed entry). */
function writeU32(bytes: Uint8Array, at: number, little: boolean, value: number): void {
  for (let i = 0; i < 4; i++) bytes[at + (little ? i : 3 - i)] = (value >>> (8 * i)) & 0xff;
}

/** Writes `ms` as the expiration of the entry at `at`. */
export function setExpiration(bytes: Uint8Array, at: number, format: SessionFormat, ms: number): void {
  const { at: offset, little } = EXPIRATION[format];
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(at + offset, ms, little);
}

/** A count and an order-independent hash (sum of key hashes mod 2³²) of a set of sessions. */
export interface Digest {
  /** Sessions in the set. */
  count: number;
  /** Sum of their key hashes, mod 2³². */
  hash: number;
}

/** Counters of the cache. */
export interface CacheCounters {
  /** New keys stored. */
  added: number;
  /** Stored keys updated. */
  updated: number;
  /** Sessions refused because the cache was full. */
  full: number;
  /** Sessions removed because their expiry passed. */
  expired: number;
  /** Entries that could not be read (a header that is not the format's size). */
  malformed: number;
}

/** Slots the cache starts with; it doubles them as needed, up to its capacity. */
const INITIAL_SLOTS = 1024;
/** An empty position of the index. */
const EMPTY = -1;

/**
 * The bounded, expiring session cache. Sessions live in slots of flat typed arrays (entry bytes, deadline,
 * origin, key hash); an open-addressing index (linear probing, twice as many positions as slots) finds a
 * session's slot by its key hash, comparing the key bytes in place. No object, string or Map entry per
 * session: about 64 bytes each, and no allocation on the per-batch path (BENCHMARKS.md "Reliable mode").
 */
export class SessionCache {
  readonly #digests = new Map<number, Digest>();
  readonly #entrySize: number;
  readonly #expiration: { at: number; little: boolean };
  #entries: Uint8Array;
  /** Deadline of each slot; 0: the slot is free. */
  #deadlines: Float64Array;
  #origins: Uint32Array;
  #hashes: Uint32Array;
  /** Position → slot, or EMPTY. */
  #index: Int32Array;
  #mask: number;
  #size = 0;
  /** Slots never used yet start here. */
  #fresh = 0;
  /** Slots freed by expiry, reused first. */
  readonly #free: number[] = [];
  /** Counters, for the stats views. */
  readonly counters: CacheCounters = { added: 0, updated: 0, full: 0, expired: 0, malformed: 0 };

  /**
   * A cache of at most `capacity` sessions in `format`, with clock `now` (ms).
   */
  constructor(
    readonly format: SessionFormat,
    readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#entrySize = ENTRY_SIZE[format];
    this.#expiration = EXPIRATION[format];
    const slots = Math.min(capacity, INITIAL_SLOTS);
    this.#entries = new Uint8Array(slots * this.#entrySize);
    this.#deadlines = new Float64Array(slots);
    this.#origins = new Uint32Array(slots);
    this.#hashes = new Uint32Array(slots);
    this.#index = new Int32Array(indexSize(slots)).fill(EMPTY);
    this.#mask = this.#index.length - 1;
  }

  /** Sessions held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Stores every entry of `entries` (whole entries of the cache's format) as sent by `origin`. Per entry: one
   * key hash, a probe comparing key bytes in place, a byte copy; no allocation, and the origin's digest looked
   * up once per call (a session updated by the origin that already held it leaves the digest as it was).
   */
  put(entries: Uint8Array, origin: number): void {
    const size = this.#entrySize;
    const format = this.format;
    const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    const { at: expirationAt, little } = this.#expiration;
    const now = this.now();
    let digest: Digest | undefined;
    for (let at = 0; at + size <= entries.length; at += size) {
      if (view.getUint16(at, HOST_LITTLE_ENDIAN) !== size) {
        this.counters.malformed++;
        return; // the rest cannot be delimited
      }
      const hash = keyHash(entries, at, format);
      let position = hash & this.#mask;
      let slot: number;
      while ((slot = this.#index[position]) !== EMPTY) {
        if (this.#hashes[slot] === hash && sameKey(this.#entries, slot * size, entries, at, format)) break;
        position = (position + 1) & this.#mask;
      }
      if (slot !== EMPTY) {
        this.counters.updated++;
        if (this.#origins[slot] !== origin) {
          this.#uncount(slot);
          this.#origins[slot] = origin;
          digest ??= this.#digestOf(origin);
          digest.count++;
          digest.hash = (digest.hash + hash) >>> 0;
        }
      } else {
        const fresh = this.#allocate();
        if (fresh === undefined) {
          this.counters.full++;
          continue;
        }
        slot = fresh;
        // The index may have been rebuilt by a growth: find the empty position again.
        position = hash & this.#mask;
        while (this.#index[position] !== EMPTY) position = (position + 1) & this.#mask;
        this.#index[position] = slot;
        this.#size++;
        this.counters.added++;
        this.#origins[slot] = origin;
        this.#hashes[slot] = hash;
        digest ??= this.#digestOf(origin);
        digest.count++;
        digest.hash = (digest.hash + hash) >>> 0;
      }
      const stored = this.#entries;
      for (let i = 0, to = slot * size; i < size; i++) stored[to + i] = entries[at + i];
      // A deadline is never 0 (0 marks a free slot): now > 0 on any clock that has run at all.
      const expiration = view.getUint32(at + expirationAt, little);
      this.#deadlines[slot] = Math.max(now + expiration, Number.MIN_VALUE);
    }
  }

  /** Removes the sessions whose expiry has passed; returns how many. */
  sweep(): number {
    const now = this.now();
    let expired = 0;
    for (let slot = 0; slot < this.#fresh; slot++) {
      const deadline = this.#deadlines[slot];
      if (deadline === 0 || deadline > now) continue;
      this.#remove(slot);
      expired++;
    }
    this.counters.expired += expired;
    return expired;
  }

  /** The digest of the sessions whose origin is `origin`. */
  digest(origin: number): Digest {
    const d = this.#digests.get(origin);
    return d ? { count: d.count, hash: d.hash } : { count: 0, hash: 0 };
  }

  /**
   * A replay's snapshot: the slots in use by origin, skipping `except`'s own. A slot freed and reused before
   * it is sent holds another live session, which is as good to send.
   */
  snapshot(except: number): Map<number, number[]> {
    const byOrigin = new Map<number, number[]>();
    for (let slot = 0; slot < this.#fresh; slot++) {
      if (this.#deadlines[slot] === 0) continue;
      const origin = this.#origins[slot];
      if (origin === except) continue;
      let slots = byOrigin.get(origin);
      if (!slots) byOrigin.set(origin, slots = []);
      slots.push(slot);
    }
    return byOrigin;
  }

  /**
   * The entry in `slot` ready to send now: a copy with the expiration set to the time left; undefined when the
   * slot is free or its session has expired.
   */
  entryToSend(slot: number): Uint8Array | undefined {
    const deadline = this.#deadlines[slot];
    if (deadline === 0 || deadline === undefined) return undefined;
    const left = Math.floor(deadline - this.now());
    if (left <= 0) return undefined;
    const out = this.#entries.slice(slot * this.#entrySize, (slot + 1) * this.#entrySize);
    writeU32(out, this.#expiration.at, this.#expiration.little, Math.min(left, 0xffff_ffff));
    return out;
  }

  /** Frees `slot` and takes it out of the index (backward-shift deletion: no tombstones). */
  #remove(slot: number): void {
    let position = this.#hashes[slot] & this.#mask;
    while (this.#index[position] !== slot) position = (position + 1) & this.#mask;
    let hole = position;
    for (let next = (hole + 1) & this.#mask;; next = (next + 1) & this.#mask) {
      const moved = this.#index[next];
      if (moved === EMPTY) break;
      const home = this.#hashes[moved] & this.#mask;
      // `moved` may fill the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      this.#index[hole] = moved;
      hole = next;
    }
    this.#index[hole] = EMPTY;
    this.#uncount(slot);
    this.#deadlines[slot] = 0;
    this.#free.push(slot);
    this.#size--;
  }

  /** A free slot (growing the arrays when needed), or undefined at capacity. */
  #allocate(): number | undefined {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#fresh >= this.capacity) return undefined;
    if (this.#fresh === this.#deadlines.length) this.#grow();
    return this.#fresh++;
  }

  #grow(): void {
    const slots = Math.min(this.capacity, this.#deadlines.length * 2);
    const entries = new Uint8Array(slots * this.#entrySize);
    entries.set(this.#entries);
    this.#entries = entries;
    const deadlines = new Float64Array(slots);
    deadlines.set(this.#deadlines);
    this.#deadlines = deadlines;
    const origins = new Uint32Array(slots);
    origins.set(this.#origins);
    this.#origins = origins;
    const hashes = new Uint32Array(slots);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    this.#index = new Int32Array(indexSize(slots)).fill(EMPTY);
    this.#mask = this.#index.length - 1;
    for (let slot = 0; slot < this.#fresh; slot++) {
      if (this.#deadlines[slot] === 0) continue;
      let position = this.#hashes[slot] & this.#mask;
      while (this.#index[position] !== EMPTY) position = (position + 1) & this.#mask;
      this.#index[position] = slot;
    }
  }

  /** The digest of `origin`'s sessions, made when it has none yet (then kept while it counts any). */
  #digestOf(origin: number): Digest {
    let d = this.#digests.get(origin);
    if (!d) this.#digests.set(origin, d = { count: 0, hash: 0 });
    return d;
  }

  #uncount(slot: number): void {
    const origin = this.#origins[slot];
    const d = this.#digests.get(origin)!;
    d.count--;
    d.hash = (d.hash - this.#hashes[slot]) >>> 0;
    if (d.count === 0) this.#digests.delete(origin);
  }
}

/** Index positions for `slots` slots: the power of two ≥ twice as many (load ≤ ½). */
function indexSize(slots: number): number {
  let size = 2;
  while (size < slots * 2) size *= 2;
  return size;
}
