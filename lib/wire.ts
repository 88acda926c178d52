/**
 * The wire codec: how a kernel batch becomes a datagram and back. Upstream's wire is the batch verbatim
 * (docs/protocol.md §6.1); the later framed sync mode (sequence numbers, HMAC) will be another WireCodec wrapping this one,
 * so the relay never looks inside datagrams itself.
 * @module
 */
import type { SessionFormat } from "./session/format.ts";
import { validatePayload } from "./session/payload.ts";
import type { DropReason } from "./stats.ts";

/** A datagram that may go to the kernel, or why not. */
export type WireDecodeResult =
  | { readonly ok: true; readonly payload: Uint8Array; readonly sessions: number }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

/** Turns kernel batches into datagrams and validated datagrams into JOOLD_ADD payloads. */
export interface WireCodec {
  /** Name for logs and the stats JSON. */
  readonly name: string;
  /** Datagram for one kernel batch (its container payload). */
  encode(payload: Uint8Array): Uint8Array;
  /** Validates a datagram for a kernel that speaks `format`; never returns malformed payloads. */
  decode(datagram: Uint8Array, format: SessionFormat): WireDecodeResult;
}

/** Upstream joold's wire: the batch verbatim, validated entry by entry on the way in. */
export const upstreamWire: WireCodec = {
  name: "upstream",
  encode: (payload) => payload,
  decode(datagram, format) {
    const result = validatePayload(datagram, format);
    return result.ok ? { ok: true, payload: datagram, sessions: result.sessions } : result;
  },
};
