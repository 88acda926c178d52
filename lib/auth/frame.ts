/**
 * The authentication trailer (docs/protocol.md §10.6): pure encode/decode over bytes, the MAC given as a
 * function. A frame of the framed wire (`lib/reliable/frame.ts`) with the flag {@link FRAME_FLAG_AUTH} set
 * carries, after its body:
 *
 * ```
 *  +0  frame counter, u64 BE (per sender, from 1; every frame sent, resends and control frames included)
 *  +8  sender's wall-clock time, u64 BE, ms since 1970-01-01 UTC
 *  +16 tag: HMAC-SHA-256 over every byte before it (header with the flag, body, counter, time), 32 bytes
 * ```
 * @module
 */
import { FRAME_FLAG_AUTH, FRAME_HEADER_BYTES, frameFlags, hasFrameMagic } from "../reliable/frame.ts";

/** Bytes of the HMAC-SHA-256 tag. */
export const AUTH_TAG_BYTES = 32;
/** Bytes of the trailer: counter, time, tag. */
export const AUTH_TRAILER_BYTES: number = 16 + AUTH_TAG_BYTES;

/** A MAC over bytes (HMAC-SHA-256 with one key). */
export type Mac = (data: Uint8Array) => Uint8Array;

/**
 * `frame` (flags 0) with the flag set and the trailer appended, tagged by `mac`, in a new buffer. `counter` below
 * 2^53, `timeMs` non-negative.
 */
export function sealFrame(frame: Uint8Array, counter: number, timeMs: number, mac: Mac): Uint8Array {
  const out = new Uint8Array(frame.length + AUTH_TRAILER_BYTES);
  out.set(frame, 0);
  return sealInPlace(out, counter, timeMs, mac);
}

/**
 * Seals `buffer` where it is: a frame (flags 0) in its first `buffer.length - AUTH_TRAILER_BYTES` bytes, room for
 * the trailer after it. Sets the flag, writes the trailer, returns `buffer`. Why in place: the sender seals into
 * a buffer it reuses, with no buffer made per datagram (`./wire.ts`; BENCHMARKS.md "Authentication").
 */
export function sealInPlace(buffer: Uint8Array, counter: number, timeMs: number, mac: Mac): Uint8Array {
  const signed = buffer.length - AUTH_TAG_BYTES;
  const frameLength = signed - 16;
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  view.setUint16(6, view.getUint16(6, false) | FRAME_FLAG_AUTH, false);
  setU64(view, frameLength, counter);
  setU64(view, frameLength + 8, Math.floor(timeMs));
  buffer.set(mac(buffer.subarray(0, signed)), signed);
  return buffer;
}

/** A trailer read (not yet verified): what the tag covers, the frame without the trailer, and the fields. */
export interface AuthTrailer {
  /** The bytes the tag covers. */
  readonly signed: Uint8Array;
  /** The tag as received. */
  readonly tag: Uint8Array;
  /** The frame without its trailer (flag still set). */
  readonly frame: Uint8Array;
  /** The header's sender id. */
  readonly sender: number;
  /** The frame counter (exact below 2^53). */
  readonly counter: number;
  /** The sender's wall-clock time, ms. */
  readonly timeMs: number;
}

/** Result of {@link readTrailer}: the trailer, or why there is none (always `net_auth_missing`). */
export type TrailerResult =
  | { readonly ok: true; readonly trailer: AuthTrailer }
  | { readonly ok: false; readonly reason: "net_auth_missing"; readonly detail: string };

/** Splits an authenticated frame into its parts; anything without a whole trailer is `net_auth_missing`. */
export function readTrailer(datagram: Uint8Array): TrailerResult {
  if (!hasFrameMagic(datagram)) {
    return missing(
      'a plain (upstream) datagram: its sender has no "key file"; give every daemon the same one',
    );
  }
  if ((frameFlags(datagram) & FRAME_FLAG_AUTH) === 0) {
    return missing(
      'a frame without authentication: its sender has no "key file"; give every daemon the same one',
    );
  }
  if (datagram.length < FRAME_HEADER_BYTES + AUTH_TRAILER_BYTES) {
    return missing(
      `${datagram.length} bytes: too short for a header and an authentication trailer ` +
        `(${FRAME_HEADER_BYTES + AUTH_TRAILER_BYTES})`,
    );
  }
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const at = datagram.length - AUTH_TRAILER_BYTES;
  return {
    ok: true,
    trailer: {
      signed: datagram.subarray(0, at + 16),
      tag: datagram.subarray(at + 16),
      frame: datagram.subarray(0, at),
      sender: view.getUint32(8, false),
      counter: getU64(view, at),
      timeMs: getU64(view, at + 8),
    },
  };
}

// u64 as two u32 (no BigInt per frame); exact below 2^53, which neither a counter nor a time in ms reaches.
function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x1_0000_0000), false);
  view.setUint32(at + 4, value >>> 0, false);
}

function getU64(view: DataView, at: number): number {
  return view.getUint32(at, false) * 0x1_0000_0000 + view.getUint32(at + 4, false);
}

function missing(detail: string): TrailerResult {
  return { ok: false, reason: "net_auth_missing", detail };
}
