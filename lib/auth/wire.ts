/**
 * The authenticated wires (a `"key file"`, docs/protocol.md §10.6), behind the {@link WireCodec} seam:
 * {@link AuthenticatedWire} seals what an inner codec encodes and opens what it decodes; {@link FramedDataWire}
 * is the inner codec of `"mode": "upstream"` with a key — DATA frames only, no sequence tracking or recovery
 * (the reliable mode's engine is the inner codec of `"mode": "reliable"`).
 * @module
 */
import type { SessionFormat } from "../session/format.ts";
import { validatePayload } from "../session/payload.ts";
import type { PlainCodec, WireCodec, WireDecodeResult, WireHandled } from "../wire.ts";
import {
  decodeFrame,
  encodeData,
  encodeDataInto,
  FRAME_FLAG_AUTH,
  FRAME_HEADER_BYTES,
  FRAME_TYPE,
} from "../reliable/frame.ts";
import type { Authenticator } from "./authenticator.ts";
import { AUTH_TRAILER_BYTES } from "./frame.ts";

/**
 * Bytes of the buffer {@link AuthenticatedWire} seals into: the largest datagram the relay sends (a frame of
 * upstream's largest datagram, 2 048 bytes, and a trailer); a larger one gets a larger buffer.
 */
const SEND_BUFFER_BYTES = FRAME_HEADER_BYTES + 2048 + AUTH_TRAILER_BYTES;

/** `inner`'s datagrams, each sealed on the way out and checked (then the trailer cut off) on the way in. */
export class AuthenticatedWire implements WireCodec {
  /** Codec name, shown in the stats JSON: the inner codec's, "+auth". */
  readonly name: string;
  /** The inner codec's overhead and the trailer. */
  readonly overhead: number;
  /** Where every datagram is sealed: one buffer, reused (see {@link encode}). */
  #out = new Uint8Array(SEND_BUFFER_BYTES);

  /** `inner` must expect frames with {@link FRAME_FLAG_AUTH} set. */
  constructor(private readonly inner: WireCodec, private readonly auth: Authenticator) {
    this.name = `${inner.name}+auth`;
    this.overhead = inner.overhead + AUTH_TRAILER_BYTES;
  }

  /**
   * The inner codec's datagram, sealed — in a buffer this wire reuses, valid until its next `encode` (the
   * relay sends each datagram before it encodes the next). Why: a new buffer per datagram cost more than the
   * HMAC itself (BENCHMARKS.md "Authentication"). `FramedDataWire` writes its frame straight into it.
   */
  encode(payload: Uint8Array): Uint8Array {
    if (this.inner instanceof FramedDataWire) {
      const datagram = this.#room(FRAME_HEADER_BYTES + payload.length + AUTH_TRAILER_BYTES);
      this.inner.encodeInto(datagram, payload);
      return this.auth.sealInPlace(datagram);
    }
    const frame = this.inner.encode(payload);
    const datagram = this.#room(frame.length + AUTH_TRAILER_BYTES);
    datagram.set(frame);
    return this.auth.sealInPlace(datagram);
  }

  /** The first `length` bytes of the send buffer (grown if it is shorter). */
  #room(length: number): Uint8Array {
    if (this.#out.length < length) this.#out = new Uint8Array(length);
    return this.#out.subarray(0, length);
  }

  /** Checked by the authenticator, then decoded by the inner codec. */
  decode(datagram: Uint8Array, format: SessionFormat): WireDecodeResult | WireHandled {
    const opened = this.auth.open(datagram);
    if (!opened.ok) return opened;
    return this.inner.decode(opened.frame, format);
  }
}

/** Upstream mode with a key: each kernel batch in one DATA frame (sender id random per start, sequence counted). */
export class FramedDataWire implements PlainCodec {
  /** Codec name, shown in the stats JSON. */
  readonly name = "framed";
  /** The DATA frame's header. */
  readonly overhead: number = FRAME_HEADER_BYTES;
  readonly #sender: number;
  #seq = 0;

  /** A codec with a new random sender id. */
  constructor() {
    const id = crypto.getRandomValues(new Uint32Array(1))[0];
    this.#sender = id === 0 ? 1 : id;
  }

  /** This daemon's sender id. */
  get sender(): number {
    return this.#sender;
  }

  /** A DATA frame (flags 0; the authenticator sets the flag). */
  encode(payload: Uint8Array): Uint8Array {
    return encodeData(this.#sender, this.#nextSeq(), payload);
  }

  /** As {@link encode}, written at the start of `out`; returns its length. */
  encodeInto(out: Uint8Array, payload: Uint8Array): number {
    return encodeDataInto(out, this.#sender, this.#nextSeq(), payload);
  }

  /** The sequence only fills the header here (nothing tracks it); it wraps to 1. */
  #nextSeq(): number {
    this.#seq = this.#seq === 0xffff_ffff ? 1 : this.#seq + 1;
    return this.#seq;
  }

  /** A checked frame (flag set, trailer cut off): its entries, validated; any other type is a mixed group. */
  decode(frame: Uint8Array, format: SessionFormat): WireDecodeResult {
    const decoded = decodeFrame(frame, FRAME_FLAG_AUTH);
    if (!decoded.ok) return decoded;
    if (decoded.frame.type !== FRAME_TYPE.DATA) {
      return {
        ok: false,
        reason: "net_frame_type",
        detail: `a reliable-mode frame (type ${decoded.frame.type}): a daemon of this group has "mode": ` +
          '"reliable"; set the same "mode" on every daemon of the group',
      };
    }
    const entries = decoded.frame.entries;
    const result = validatePayload(entries, format);
    if (!result.ok) return result;
    return { ok: true, payload: entries, sessions: result.sessions };
  }
}

/**
 * Bytes the wire of `net` adds to each kernel batch, without building it (`--check`): 0 for upstream's wire, a
 * DATA frame's header for the reliable mode, and the trailer on top with a key — what the codecs' `overhead`
 * says once running.
 */
export function framedWireOverhead(
  net: { readonly auth?: unknown; readonly sync?: { readonly mode: string } },
): number {
  if (net.auth === undefined && net.sync?.mode !== "reliable") return 0;
  return FRAME_HEADER_BYTES + (net.auth === undefined ? 0 : AUTH_TRAILER_BYTES);
}
