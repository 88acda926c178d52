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

/** Scratch for a key's bytes, so each key is built as one flat string. */
const keyCodes: number[] = [];

/** The key of the entry at `at` (a one-byte string of its key bytes) and its 32-bit FNV-1a hash. */
export function sessionKey(
  bytes: Uint8Array,
  at: number,
  format: SessionFormat,
): { key: string; hash: number } {
  keyCodes.length = 0;
  let hash = 0x811c9dc5;
  for (const [from, to] of KEY_RANGES[format]) {
    for (let i = at + from; i < at + to; i++) {
      const b = bytes[i];
      keyCodes.push(b);
      hash = Math.imul(hash ^ b, 0x01000193);
    }
  }
  const proto = protoOf(bytes, at, format);
  keyCodes.push(proto);
  hash = Math.imul(hash ^ proto, 0x01000193) >>> 0;
  return { key: String.fromCharCode.apply(null, keyCodes), hash };
}

/** The expiration (ms left) of the entry at `at`. */
export function expirationOf(bytes: Uint8Array, at: number, format: SessionFormat): number {
  const { at: offset, little } = EXPIRATION[format];
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at + offset, little);
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

/**
 * The bounded, expiring session cache. Sessions live in slots of flat typed arrays (entry bytes, deadline,
 * origin, key hash), found by key through one Map: about 150 bytes a session (BENCHMARKS.md "Reliable mode"),
 * where an object and a Uint8Array per session took about 700.
 */
export class SessionCache {
  readonly #slots = new Map<string, number>();
  readonly #digests = new Map<number, Digest>();
  readonly #entrySize: number;
  #entries: Uint8Array;
  #deadlines: Float64Array;
  #origins: Uint32Array;
  #hashes: Uint32Array;
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
    const slots = Math.min(capacity, INITIAL_SLOTS);
    this.#entries = new Uint8Array(slots * this.#entrySize);
    this.#deadlines = new Float64Array(slots);
    this.#origins = new Uint32Array(slots);
    this.#hashes = new Uint32Array(slots);
  }

  /** Sessions held. */
  get size(): number {
    return this.#slots.size;
  }

  /** Stores every entry of `entries` (whole entries of the cache's format) as sent by `origin`. */
  put(entries: Uint8Array, origin: number): void {
    const size = this.#entrySize;
    const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    const now = this.now();
    for (let at = 0; at + size <= entries.length; at += size) {
      if (view.getUint16(at, HOST_LITTLE_ENDIAN) !== size) {
        this.counters.malformed++;
        return; // the rest cannot be delimited
      }
      const { key, hash } = sessionKey(entries, at, this.format);
      let slot = this.#slots.get(key);
      if (slot !== undefined) {
        this.#uncount(slot);
        this.counters.updated++;
      } else {
        slot = this.#allocate();
        if (slot === undefined) {
          this.counters.full++;
          continue;
        }
        this.#slots.set(key, slot);
        this.counters.added++;
      }
      this.#entries.set(entries.subarray(at, at + size), slot * size);
      this.#deadlines[slot] = now + expirationOf(entries, at, this.format);
      this.#origins[slot] = origin;
      this.#hashes[slot] = hash;
      this.#count(slot);
    }
  }

  /** Removes the sessions whose expiry has passed; returns how many. */
  sweep(): number {
    const now = this.now();
    let expired = 0;
    for (const [key, slot] of this.#slots) {
      if (this.#deadlines[slot] <= now) {
        this.#slots.delete(key);
        this.#uncount(slot);
        this.#free.push(slot);
        expired++;
      }
    }
    this.counters.expired += expired;
    return expired;
  }

  /** The digest of the sessions whose origin is `origin`. */
  digest(origin: number): Digest {
    const d = this.#digests.get(origin);
    return d ? { count: d.count, hash: d.hash } : { count: 0, hash: 0 };
  }

  /** Sessions by origin (a replay's snapshot: origin → keys), skipping `except`'s own. */
  snapshot(except: number): Map<number, string[]> {
    const byOrigin = new Map<number, string[]>();
    for (const [key, slot] of this.#slots) {
      const origin = this.#origins[slot];
      if (origin === except) continue;
      let keys = byOrigin.get(origin);
      if (!keys) byOrigin.set(origin, keys = []);
      keys.push(key);
    }
    return byOrigin;
  }

  /**
   * The entry of `key` ready to send now: a copy with the expiration set to the time left; undefined when it
   * is gone or has expired.
   */
  entryToSend(key: string): Uint8Array | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    const left = Math.floor(this.#deadlines[slot] - this.now());
    if (left <= 0) return undefined;
    const out = this.#entries.slice(slot * this.#entrySize, (slot + 1) * this.#entrySize);
    setExpiration(out, 0, this.format, Math.min(left, 0xffff_ffff));
    return out;
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
  }

  #count(slot: number): void {
    const origin = this.#origins[slot];
    let d = this.#digests.get(origin);
    if (!d) this.#digests.set(origin, d = { count: 0, hash: 0 });
    d.count++;
    d.hash = (d.hash + this.#hashes[slot]) >>> 0;
  }

  #uncount(slot: number): void {
    const origin = this.#origins[slot];
    const d = this.#digests.get(origin)!;
    d.count--;
    d.hash = (d.hash - this.#hashes[slot]) >>> 0;
    if (d.count === 0) this.#digests.delete(origin);
  }
}
