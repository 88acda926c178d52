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

/** The key of the entry at `at` and its 32-bit FNV-1a hash. */
export function sessionKey(
  bytes: Uint8Array,
  at: number,
  format: SessionFormat,
): { key: string; hash: number } {
  let key = "";
  let hash = 0x811c9dc5;
  for (const [from, to] of KEY_RANGES[format]) {
    for (let i = at + from; i < at + to; i++) {
      const b = bytes[i];
      key += String.fromCharCode(b);
      hash = Math.imul(hash ^ b, 0x01000193);
    }
  }
  const proto = protoOf(bytes, at, format);
  key += String.fromCharCode(proto);
  hash = Math.imul(hash ^ proto, 0x01000193) >>> 0;
  return { key, hash };
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

/** One cached session. */
export interface CachedSession {
  /** Its entry bytes (the local format, header included). */
  readonly entry: Uint8Array;
  /** When it expires (the cache's clock, ms). */
  readonly deadline: number;
  /** The daemon id that last sent it (this daemon's own id for its kernel's sessions). */
  readonly origin: number;
  /** Its key's hash (for digests). */
  readonly hash: number;
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

/** The bounded, expiring session cache. */
export class SessionCache {
  readonly #sessions = new Map<string, CachedSession>();
  readonly #digests = new Map<number, Digest>();
  /** Counters, for the stats views. */
  readonly counters: CacheCounters = { added: 0, updated: 0, full: 0, expired: 0, malformed: 0 };

  /**
   * A cache of at most `capacity` sessions in `format`, with clock `now` (ms).
   */
  constructor(
    readonly format: SessionFormat,
    readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Sessions held. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Stores every entry of `entries` (whole entries of the cache's format) as sent by `origin`. */
  put(entries: Uint8Array, origin: number): void {
    const size = ENTRY_SIZE[this.format];
    const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    const now = this.now();
    for (let at = 0; at + size <= entries.length; at += size) {
      if (view.getUint16(at, HOST_LITTLE_ENDIAN) !== size) {
        this.counters.malformed++;
        return; // the rest cannot be delimited
      }
      const { key, hash } = sessionKey(entries, at, this.format);
      const deadline = now + expirationOf(entries, at, this.format);
      const old = this.#sessions.get(key);
      if (old) {
        this.#forget(old);
        this.counters.updated++;
      } else if (this.#sessions.size >= this.capacity) {
        this.counters.full++;
        continue;
      } else this.counters.added++;
      const session = { entry: entries.slice(at, at + size), deadline, origin, hash };
      this.#sessions.set(key, session);
      this.#count(session);
    }
  }

  /** Removes the sessions whose expiry has passed; returns how many. */
  sweep(): number {
    const now = this.now();
    let expired = 0;
    for (const [key, session] of this.#sessions) {
      if (session.deadline <= now) {
        this.#sessions.delete(key);
        this.#forget(session);
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
    for (const [key, session] of this.#sessions) {
      if (session.origin === except) continue;
      let keys = byOrigin.get(session.origin);
      if (!keys) byOrigin.set(session.origin, keys = []);
      keys.push(key);
    }
    return byOrigin;
  }

  /**
   * The entry of `key` ready to send now: a copy with the expiration set to the time left; undefined when it
   * is gone or has expired.
   */
  entryToSend(key: string): Uint8Array | undefined {
    const session = this.#sessions.get(key);
    if (!session) return undefined;
    const left = Math.floor(session.deadline - this.now());
    if (left <= 0) return undefined;
    const out = session.entry.slice();
    setExpiration(out, 0, this.format, Math.min(left, 0xffff_ffff));
    return out;
  }

  #count(session: CachedSession): void {
    let d = this.#digests.get(session.origin);
    if (!d) this.#digests.set(session.origin, d = { count: 0, hash: 0 });
    d.count++;
    d.hash = (d.hash + session.hash) >>> 0;
  }

  #forget(session: CachedSession): void {
    const d = this.#digests.get(session.origin)!;
    d.count--;
    d.hash = (d.hash - session.hash) >>> 0;
    if (d.count === 0) this.#digests.delete(session.origin);
  }
}
