/**
 * The wire codec: how a kernel batch becomes a datagram and back. Upstream's wire is the batch verbatim
 * (docs/protocol.md §6.1); the reliable mode (`lib/reliable/sync.ts`, docs/protocol.md §10) is another WireCodec, so
 * the relay never looks inside datagrams itself.
 * @module
 */
import type { SessionFormat } from "./session/format.ts";
import { validatePayload } from "./session/payload.ts";
import { AUTH_UNEXPECTED, FRAME_FLAG_AUTH, frameFlags, hasFrameMagic } from "./reliable/frame.ts";
import type { DropReason } from "./stats.ts";

/** A datagram that may go to the kernel, or why not. */
export type WireDecodeResult =
  | { readonly ok: true; readonly payload: Uint8Array; readonly sessions: number }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

/** The codec's own message (a reliable-mode control frame or a duplicate): handled, nothing for the kernel. */
export type WireHandled = { readonly ok: "handled" };

/** Turns kernel batches into datagrams and validated datagrams into JOOLD_ADD payloads. */
export interface WireCodec {
  /** Name for logs and the stats JSON. */
  readonly name: string;
  /**
   * Bytes a datagram adds around the payload it carries (0: the payload is the datagram). The relay keeps
   * payload + overhead within one packet of the sync link on the framed wires (`lib/net/packet_fit.ts`).
   */
  readonly overhead: number;
  /**
   * Datagram for one kernel batch (its container payload). It may live in a buffer the codec reuses: valid
   * until the codec's next `encode` (the relay sends each datagram before it encodes the next).
   */
  encode(payload: Uint8Array): Uint8Array;
  /** Validates a datagram for a kernel that speaks `format`; never returns malformed payloads. */
  decode(datagram: Uint8Array, format: SessionFormat): WireDecodeResult | WireHandled;
}

/** A codec without messages of its own: every datagram is a payload or a drop. */
export interface PlainCodec extends WireCodec {
  /** As {@link WireCodec.decode}, never "handled". */
  decode(datagram: Uint8Array, format: SessionFormat): WireDecodeResult;
}

/** Upstream joold's wire: the batch verbatim, validated entry by entry on the way in. */
export const upstreamWire: PlainCodec = {
  name: "upstream",
  overhead: 0,
  encode: (payload) => payload,
  decode(datagram, format) {
    const result = validatePayload(datagram, format);
    if (result.ok) return { ok: true, payload: datagram, sessions: result.sessions };
    // Looked at only once validation failed (a framed datagram never validates: its magic, read as an entry
    // header, overruns it), so the accepted path costs nothing more than upstream's.
    if (hasFrameMagic(datagram)) {
      if (frameFlags(datagram) & FRAME_FLAG_AUTH) return AUTH_UNEXPECTED;
      return {
        ok: false,
        reason: "net_framed",
        detail: 'a reliable-mode datagram: a daemon of this group has "mode": "reliable"; set the same ' +
          '"mode" on every daemon of the group',
      };
    }
    return result;
  },
};
