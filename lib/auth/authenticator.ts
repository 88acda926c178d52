/**
 * Authentication of the framed wire with pre-shared keys (`"key file"`, `"second key file"`; docs/protocol.md
 * §10.6): seals every frame this daemon sends and checks every frame it receives, in the order missing → bad tag
 * → replay → stale, each a drop reason. HMAC-SHA-256 synchronous (`./hmac.ts`: libcrypto, else `node:crypto`),
 * so the relay's decode stays synchronous (why not WebCrypto: BENCHMARKS.md "Authentication").
 * @module
 */
import { type Mac, readTrailer, sealFrame, sealInPlace } from "./frame.ts";
import { SenderWindows } from "./replay_window.ts";
import { hmacBackend, hmacSha256 } from "./hmac.ts";

/**
 * How far a frame's timestamp may be from this host's clock, either way. Why a timestamp at all: a receiver
 * that restarts, or forgets a gone sender's window, has no memory of the counters it took; the timestamp bounds
 * how long a captured frame is worth replaying. Why ±60 s: wide enough for routers whose clocks NTP keeps
 * within a second, and for a frame that waited in a socket; narrow enough that a replay after a restart can
 * only bring back sessions the sender really had in the last minute. Routers need NTP.
 */
export const FRESHNESS_MS = 60_000;
/** A sender's replay window is kept this long after its last frame: beyond it, all its frames are stale. */
export const RETAIN_MS: number = 3 * FRESHNESS_MS;
/** Own sender ids remembered (the reliable mode takes a new one only when its sequences run out). */
const OWN_IDS_KEPT = 4;
/** How often windows of silent senders are forgotten. */
const SWEEP_MS = 10_000;

/** Why a received frame is refused. */
export type AuthDropReason = "net_auth_missing" | "net_auth_bad" | "net_auth_replay" | "net_auth_stale";

/** Result of {@link Authenticator.open}: the frame without its trailer (flag still set), or a drop. */
export type OpenResult =
  | { readonly ok: true; readonly frame: Uint8Array }
  | { readonly ok: false; readonly reason: AuthDropReason; readonly detail: string };

/** Counters of the authentication layer, for the stats JSON. */
export interface AuthCounters {
  /** Frames sealed (sent or about to be). */
  sealed: number;
  /** Frames whose tag matched "key file". */
  verifiedFirst: number;
  /** Frames whose tag matched "second key file" (a peer still signs with it: the rollover is not done). */
  verifiedSecond: number;
}

/** Seals and opens frames with the configured keys; the keys can be replaced while running ({@link setKeys}). */
export class Authenticator {
  #macs: Mac[] = [];
  #counter = 0;
  readonly #windows = new SenderWindows(RETAIN_MS);
  /** Sender ids of the frames this daemon sealed (one; a few when the reliable mode takes a new id). */
  readonly #own = new Set<number>();
  #lastSweep = 0;
  /** Counters, for the stats JSON. */
  readonly counters: AuthCounters = { sealed: 0, verifiedFirst: 0, verifiedSecond: 0 };

  /**
   * `keys[0]` signs and is tried first; `keys[1]`, if any, is also accepted. `now`: the wall clock in ms
   * (`Date.now` unless a test's).
   */
  constructor(keys: readonly Uint8Array[], private readonly now: () => number = Date.now) {
    this.setKeys(keys);
  }

  /** Replaces the keys (SIGHUP): `keys[0]` signs from the next frame on. */
  setKeys(keys: readonly Uint8Array[]): void {
    if (keys.length === 0) throw new RangeError("at least one key");
    this.#macs = keys.map((key) => hmacSha256(key));
  }

  /** Keys accepted (1 or 2). */
  get keyCount(): number {
    return this.#macs.length;
  }

  /** Senders whose replay windows are kept. */
  get senders(): number {
    return this.#windows.size;
  }

  /** `frame` (flags 0) with the authentication trailer: the next counter, the time, the tag of "key file". */
  seal(frame: Uint8Array): Uint8Array {
    this.#sealing(frame);
    return sealFrame(frame, ++this.#counter, this.now(), this.#macs[0]);
  }

  /**
   * As {@link seal}, in place: `buffer` is a frame (flags 0) followed by `AUTH_TRAILER_BYTES` (48) bytes of
   * room; returns it sealed.
   */
  sealInPlace(buffer: Uint8Array): Uint8Array {
    this.#sealing(buffer);
    return sealInPlace(buffer, ++this.#counter, this.now(), this.#macs[0]);
  }

  /** Counts a frame about to be sealed and remembers its sender id as this daemon's own. */
  #sealing(frame: Uint8Array): void {
    this.counters.sealed++;
    const sender = ((frame[8] << 24) | (frame[9] << 16) | (frame[10] << 8) | frame[11]) >>> 0;
    if (!this.#own.has(sender)) {
      if (this.#own.size >= OWN_IDS_KEPT) this.#own.delete(this.#own.values().next().value!);
      this.#own.add(sender);
    }
  }

  /** Checks a received datagram: missing trailer, tag, replay, freshness, in that order. */
  open(datagram: Uint8Array): OpenResult {
    const read = readTrailer(datagram);
    if (!read.ok) return read;
    const trailer = read.trailer;
    const key = this.#verify(trailer.signed, trailer.tag);
    if (key < 0) {
      return {
        ok: false,
        reason: "net_auth_bad",
        detail:
          `sender ${hex(trailer.sender)}: the tag matches no configured key; give every daemon the same ` +
          '"key file" (during a key change, the old key as "second key file")',
      };
    }
    if (this.#own.has(trailer.sender)) {
      // Multicast loop is off (and unicast peers never send to themselves), so our own authentic frame only
      // comes back when someone sends it again — towards its sender, whose replay window never saw it.
      return {
        ok: false,
        reason: "net_auth_replay",
        detail: `sender ${hex(trailer.sender)} is this daemon: its own frame, sent again by someone else`,
      };
    }
    const now = this.now();
    if (now - this.#lastSweep >= SWEEP_MS) {
      this.#lastSweep = now;
      this.#windows.sweep(now);
    }
    const verdict = this.#windows.check(trailer.sender, trailer.counter, now);
    if (verdict !== "fresh") {
      return {
        ok: false,
        reason: "net_auth_replay",
        detail: `sender ${hex(trailer.sender)}, frame counter ${trailer.counter}: ` +
          (verdict === "duplicate"
            ? "already received (a replayed or duplicated datagram)"
            : verdict === "behind"
            ? "behind the replay window (a replayed datagram)"
            : "too many senders within the freshness window"),
      };
    }
    const skew = trailer.timeMs - now;
    if (Math.abs(skew) > FRESHNESS_MS) {
      return {
        ok: false,
        reason: "net_auth_stale",
        detail: `sender ${hex(trailer.sender)}: its timestamp is ${Math.round(skew / 1000)} s off this ` +
          `host's clock (at most ±${
            FRESHNESS_MS / 1000
          } s): a replayed datagram, or clocks apart; keep every ` +
          "router's clock synchronised (NTP)",
      };
    }
    this.#windows.take(trailer.sender, trailer.counter, now);
    if (key === 0) this.counters.verifiedFirst++;
    else this.counters.verifiedSecond++;
    return { ok: true, frame: trailer.frame };
  }

  /** Index of the key whose tag matches, or -1. */
  #verify(signed: Uint8Array, tag: Uint8Array): number {
    for (let i = 0; i < this.#macs.length; i++) {
      if (equalTags(this.#macs[i](signed), tag)) return i;
    }
    return -1;
  }

  /** The layer's state for the stats JSON. */
  status(): Record<string, unknown> {
    return {
      keys: this.keyCount,
      hmac: hmacBackend(),
      senders: this.senders,
      counter: this.#counter,
      ...this.counters,
    };
  }
}

/**
 * Whether two tags are equal, in time that does not depend on where they differ (no early exit, no branch on
 * the bytes). Why not `node:crypto`'s `timingSafeEqual`: the same loop behind a call that converts its
 * arguments, several times slower per datagram (BENCHMARKS.md "Authentication").
 */
export function equalTags(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

function hex(id: number): string {
  return id.toString(16).padStart(8, "0");
}
