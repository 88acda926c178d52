/**
 * The reliable mode's frame (docs/protocol.md §10): a 16-byte header in front of each datagram between our own
 * daemons, pure encode/decode over bytes. Big-endian throughout.
 *
 * ```
 *  0  magic "JDRS" (4a 44 52 53)      8  sender id, u32 (random per start, never 0)
 *  4  version (1), u8                 12 sequence, u32 (0 for unsequenced types)
 *  5  type, u8                        16 body (by type)
 *  6  flags, u16 (0, or FRAME_FLAG_AUTH)
 * ```
 * With the flag {@link FRAME_FLAG_AUTH} set, an authentication trailer follows the body (`lib/auth/frame.ts`).
 * @module
 */

/** The four magic bytes, "JDRS". Read as a session entry header their nla_len (0x444a) overruns any datagram. */
export const FRAME_MAGIC: Uint8Array = Uint8Array.of(0x4a, 0x44, 0x52, 0x53);
/** The frame layout this daemon speaks. */
export const FRAME_VERSION = 1;
/** Header bytes before the body. */
export const FRAME_HEADER_BYTES = 16;
/** Flags bit: an authentication trailer follows the body (a `"key file"` is configured, docs/protocol.md §10.6). */
export const FRAME_FLAG_AUTH = 0x0001;

/**
 * Frame types. DATA, REPLAY and REPLAY_END are sequenced (the header's sequence is theirs); in the others the
 * header's sequence field is the sender's latest sequence, so any frame tells a peer what it should have.
 */
export const FRAME_TYPE = {
  /** A batch from the sender's kernel: body = whole session entries. */
  DATA: 1,
  /** Part of a table replay: body = target u32, origin u32, whole session entries. */
  REPLAY: 2,
  /** The end of a replay: body = target u32, sessions replayed u32, the replay's first sequence u32. */
  REPLAY_END: 3,
  /** Missing sequences: body = target u32, first u32, last u32. */
  NACK: 4,
  /** Liveness: body = digest count u32, digest hash u32 (of the sender's own sessions). */
  HEARTBEAT: 5,
  /** Please replay your table to me: body = target u32 (0: every peer). */
  RESYNC_REQUEST: 6,
  /** The sequences asked for are no longer kept: body = target u32, first u32, last u32. */
  UNAVAILABLE: 7,
} as const;

/** One frame type number. */
export type FrameTypeNumber = typeof FRAME_TYPE[keyof typeof FRAME_TYPE];

/** A decoded frame. `entries` views the datagram (valid as long as it is). */
export type Frame =
  | { readonly type: 1; readonly sender: number; readonly seq: number; readonly entries: Uint8Array }
  | {
    readonly type: 2;
    readonly sender: number;
    readonly seq: number;
    readonly target: number;
    readonly origin: number;
    readonly entries: Uint8Array;
  }
  | {
    readonly type: 3;
    readonly sender: number;
    readonly seq: number;
    readonly target: number;
    readonly sessions: number;
    readonly first: number;
  }
  | {
    readonly type: 4 | 7;
    readonly sender: number;
    readonly latest: number;
    readonly target: number;
    readonly first: number;
    readonly last: number;
  }
  | {
    readonly type: 5;
    readonly sender: number;
    readonly latest: number;
    readonly count: number;
    readonly hash: number;
  }
  | { readonly type: 6; readonly sender: number; readonly latest: number; readonly target: number };

/** Why a datagram is not a frame this daemon takes. */
export type FrameDropReason =
  | "net_unframed" // no magic: a plain (upstream) datagram in a reliable group
  | "net_frame_short" // shorter than the header
  | "net_frame_version" // another frame version
  | "net_frame_type" // unknown type
  | "net_frame_flags" // reserved flags set
  | "net_auth_unexpected" // an authenticated frame, and this daemon has no key
  | "net_frame_sender" // sender id 0
  | "net_frame_body"; // body length wrong for its type

/** Result of {@link decodeFrame}. */
export type FrameResult =
  | { readonly ok: true; readonly frame: Frame }
  | { readonly ok: false; readonly reason: FrameDropReason; readonly detail: string };

/** Whether `datagram` starts with the frame magic (how an upstream-mode daemon recognises a framed peer). */
export function hasFrameMagic(datagram: Uint8Array): boolean {
  return datagram.length >= 4 && datagram[0] === FRAME_MAGIC[0] && datagram[1] === FRAME_MAGIC[1] &&
    datagram[2] === FRAME_MAGIC[2] && datagram[3] === FRAME_MAGIC[3];
}

function header(
  type: FrameTypeNumber,
  sender: number,
  seq: number,
  bodyBytes: number,
): [Uint8Array, DataView] {
  const out = new Uint8Array(FRAME_HEADER_BYTES + bodyBytes);
  const view = new DataView(out.buffer);
  out.set(FRAME_MAGIC, 0);
  out[4] = FRAME_VERSION;
  out[5] = type;
  view.setUint32(8, sender, false);
  view.setUint32(12, seq, false);
  return [out, view];
}

/** A DATA frame around `entries`. */
export function encodeData(sender: number, seq: number, entries: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + entries.length);
  encodeDataInto(out, sender, seq, entries);
  return out;
}

/**
 * A DATA frame around `entries` written at the start of `out` (flags 0; what `out` holds after it is left as
 * it is), for a sender that reuses one buffer (`lib/auth/wire.ts`). Returns the frame's length.
 */
export function encodeDataInto(out: Uint8Array, sender: number, seq: number, entries: Uint8Array): number {
  const length = FRAME_HEADER_BYTES + entries.length;
  if (out.length < length) throw new RangeError(`a ${length}-byte DATA frame in ${out.length} bytes`);
  out.set(FRAME_MAGIC, 0);
  out[4] = FRAME_VERSION;
  out[5] = FRAME_TYPE.DATA;
  out[6] = 0;
  out[7] = 0;
  setU32(out, 8, sender);
  setU32(out, 12, seq);
  out.set(entries, FRAME_HEADER_BYTES);
  return length;
}

function setU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

/** A REPLAY frame: `entries` learnt from `origin`, for `target` (0: for every peer). */
export function encodeReplay(
  sender: number,
  seq: number,
  target: number,
  origin: number,
  entries: Uint8Array,
): Uint8Array {
  const [out, view] = header(FRAME_TYPE.REPLAY, sender, seq, 8 + entries.length);
  view.setUint32(16, target, false);
  view.setUint32(20, origin, false);
  out.set(entries, 24);
  return out;
}

/**
 * The REPLAY_END marker of a replay to `target` that carried `sessions` sessions and began at sequence
 * `first` (its first REPLAY frame's, or this END's own when there were none).
 */
export function encodeReplayEnd(
  sender: number,
  seq: number,
  target: number,
  sessions: number,
  first: number,
): Uint8Array {
  const [out, view] = header(FRAME_TYPE.REPLAY_END, sender, seq, 12);
  view.setUint32(16, target, false);
  view.setUint32(20, sessions, false);
  view.setUint32(24, first, false);
  return out;
}

/** A NACK (or UNAVAILABLE) of sequences `first`..`last` of `target`; `latest`: the sender's latest sequence. */
export function encodeRange(
  type: typeof FRAME_TYPE.NACK | typeof FRAME_TYPE.UNAVAILABLE,
  sender: number,
  latest: number,
  target: number,
  first: number,
  last: number,
): Uint8Array {
  const [out, view] = header(type, sender, latest, 12);
  view.setUint32(16, target, false);
  view.setUint32(20, first, false);
  view.setUint32(24, last, false);
  return out;
}

/** A HEARTBEAT: the latest sequence sent and the digest of the sender's own sessions. */
export function encodeHeartbeat(sender: number, latest: number, count: number, hash: number): Uint8Array {
  const [out, view] = header(FRAME_TYPE.HEARTBEAT, sender, latest, 8);
  view.setUint32(16, count, false);
  view.setUint32(20, hash, false);
  return out;
}

/** A RESYNC_REQUEST to `target` (0: every peer); `latest`: the sender's latest sequence. */
export function encodeResyncRequest(sender: number, latest: number, target: number): Uint8Array {
  const [out, view] = header(FRAME_TYPE.RESYNC_REQUEST, sender, latest, 4);
  view.setUint32(16, target, false);
  return out;
}

/** An authenticated frame at a daemon without a key: the one home of its message. */
export const AUTH_UNEXPECTED: {
  readonly ok: false;
  readonly reason: "net_auth_unexpected";
  readonly detail: string;
} = {
  ok: false,
  reason: "net_auth_unexpected",
  detail:
    'an authenticated datagram, and this daemon has no "key file": give every daemon of the group the ' +
    'same "key file" (or none)',
};

/** Body length each type must have; undefined: any length from the given minimum. */
const BODY: Record<number, { exact?: number; min?: number }> = {
  [FRAME_TYPE.DATA]: { min: 1 },
  [FRAME_TYPE.REPLAY]: { min: 9 },
  [FRAME_TYPE.REPLAY_END]: { exact: 12 },
  [FRAME_TYPE.NACK]: { exact: 12 },
  [FRAME_TYPE.HEARTBEAT]: { exact: 8 },
  [FRAME_TYPE.RESYNC_REQUEST]: { exact: 4 },
  [FRAME_TYPE.UNAVAILABLE]: { exact: 12 },
};

/** The header's flags (0 when too short to hold them). */
export function frameFlags(datagram: Uint8Array): number {
  return datagram.length < 8 ? 0 : (datagram[6] << 8) | datagram[7];
}

/**
 * Decodes a frame's header and body layout. The session entries inside DATA/REPLAY are not judged here (the
 * session payload codec does that for the local kernel's format). `flags`: the flags expected, 0 or
 * {@link FRAME_FLAG_AUTH} (a frame whose trailer was checked and cut off by `lib/auth/`).
 */
export function decodeFrame(datagram: Uint8Array, flags = 0): FrameResult {
  if (!hasFrameMagic(datagram)) {
    return {
      ok: false,
      reason: "net_unframed",
      detail: "a datagram without the reliable frame: a daemon of this group runs in upstream mode",
    };
  }
  if (datagram.length < FRAME_HEADER_BYTES) {
    return {
      ok: false,
      reason: "net_frame_short",
      detail: `${datagram.length} bytes < ${FRAME_HEADER_BYTES}`,
    };
  }
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const version = datagram[4];
  if (version !== FRAME_VERSION) {
    return {
      ok: false,
      reason: "net_frame_version",
      detail: `frame version ${version}; this daemon speaks 1`,
    };
  }
  const type = datagram[5];
  const body = BODY[type];
  if (!body) return { ok: false, reason: "net_frame_type", detail: `unknown frame type ${type}` };
  const got = view.getUint16(6, false);
  if (got === FRAME_FLAG_AUTH && flags === 0) return AUTH_UNEXPECTED;
  if (got !== flags) {
    return {
      ok: false,
      reason: "net_frame_flags",
      detail: `flags 0x${got.toString(16)}; expected 0x${flags.toString(16)}`,
    };
  }
  const sender = view.getUint32(8, false);
  if (sender === 0) return { ok: false, reason: "net_frame_sender", detail: "sender id 0" };
  const seq = view.getUint32(12, false);
  const bodyBytes = datagram.length - FRAME_HEADER_BYTES;
  if (
    (body.exact !== undefined && bodyBytes !== body.exact) || (body.min !== undefined && bodyBytes < body.min)
  ) {
    const want = body.exact !== undefined ? `${body.exact}` : `at least ${body.min}`;
    return {
      ok: false,
      reason: "net_frame_body",
      detail: `type ${type}: ${bodyBytes}-byte body; expected ${want}`,
    };
  }
  const u32 = (at: number) => view.getUint32(at, false);
  switch (type) {
    case FRAME_TYPE.DATA:
      return { ok: true, frame: { type, sender, seq, entries: datagram.subarray(16) } };
    case FRAME_TYPE.REPLAY:
      return {
        ok: true,
        frame: { type, sender, seq, target: u32(16), origin: u32(20), entries: datagram.subarray(24) },
      };
    case FRAME_TYPE.REPLAY_END:
      return { ok: true, frame: { type, sender, seq, target: u32(16), sessions: u32(20), first: u32(24) } };
    case FRAME_TYPE.NACK:
    case FRAME_TYPE.UNAVAILABLE:
      return {
        ok: true,
        frame: { type, sender, latest: seq, target: u32(16), first: u32(20), last: u32(24) },
      };
    case FRAME_TYPE.HEARTBEAT:
      return { ok: true, frame: { type, sender, latest: seq, count: u32(16), hash: u32(20) } };
    default:
      return { ok: true, frame: { type: 6, sender, latest: seq, target: u32(16) } };
  }
}
