/**
 * Pure codecs for the netlink and Generic Netlink layers (docs/protocol.md §1): `nlmsghdr`, `genlmsghdr` and
 * netlink attributes. Every netlink header field and every `nla_put_u16/u32` value is in host byte order;
 * attributes are padded to 4 bytes and `nla_len` excludes the padding.
 * @module
 */
import { HOST_LITTLE_ENDIAN } from "../../ffi/endian.ts";

/** Bytes of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;
/** Bytes of `struct genlmsghdr`. */
export const GENL_HDRLEN = 4;
/** Bytes of `struct nlattr`. */
export const NLA_HDRLEN = 4;

/** Control message types (`linux/netlink.h`). */
export const NLMSG_NOOP = 1;
/** An error or an acknowledgment (`struct nlmsgerr`). */
export const NLMSG_ERROR = 2;
/** End of a multipart dump. */
export const NLMSG_DONE = 3;
/** Data lost (the receive buffer overflowed). */
export const NLMSG_OVERRUN = 4;
/** Types below this are control messages, not family messages. */
export const NLMSG_MIN_TYPE = 0x10;

/** `nlmsg_flags`: a request. joold's requests carry this flag only (never NLM_F_ACK). */
export const NLM_F_REQUEST = 0x0001;
/** `nlmsg_flags`: one part of a multipart message. */
export const NLM_F_MULTI = 0x0002;

/** Attribute type flags; the type proper is `nla_type & NLA_TYPE_MASK`. */
export const NLA_F_NESTED = 0x8000;
/** Attribute flag: the payload is in network byte order. */
export const NLA_F_NET_BYTEORDER = 0x4000;
/** Mask of the attribute type proper (without the two flags). */
export const NLA_TYPE_MASK = 0x3fff;

/** Whether this CPU is little-endian ("host order" in docs/protocol.md); defined once, in `ffi/endian.ts`. */
export { HOST_LITTLE_ENDIAN };

/** Rounds up to the 4-byte netlink alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** `struct nlmsghdr`. */
export interface NetlinkHeader {
  /** Whole message length, header included. */
  readonly length: number;
  /** Message type: a control type or a family id. */
  readonly type: number;
  /** `NLM_F_*` flags. */
  readonly flags: number;
  /** Sequence number (0 in kernel multicasts). */
  readonly seq: number;
  /** Sender's port id (0 for the kernel). */
  readonly pid: number;
}

/** `struct genlmsghdr`. */
export interface GenlHeader {
  /** Command (0 in every message the kernel originates). */
  readonly cmd: number;
  /** Family version (2 from the kernel, 1 from libnl requests). */
  readonly version: number;
  /** Reserved, 0. */
  readonly reserved: number;
}

/** One attribute: its type with the flags masked off, the flags, and its payload (a view, not a copy). */
export interface Attribute {
  /** Type proper (flags masked off). */
  readonly type: number;
  /** Whether NLA_F_NESTED was set. */
  readonly nested: boolean;
  /** Whether NLA_F_NET_BYTEORDER was set. */
  readonly netByteOrder: boolean;
  /** Payload, without padding (a view, not a copy). */
  readonly payload: Uint8Array;
}

/** A view over `bytes` with the right offset. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a `nlmsghdr` at offset 0 of `out`. */
export function writeNetlinkHeader(out: Uint8Array, header: NetlinkHeader): void {
  const v = viewOf(out);
  v.setUint32(0, header.length, HOST_LITTLE_ENDIAN);
  v.setUint16(4, header.type, HOST_LITTLE_ENDIAN);
  v.setUint16(6, header.flags, HOST_LITTLE_ENDIAN);
  v.setUint32(8, header.seq, HOST_LITTLE_ENDIAN);
  v.setUint32(12, header.pid, HOST_LITTLE_ENDIAN);
}

/** Reads a `nlmsghdr` at `offset`; the caller checks that 16 bytes are there. */
export function readNetlinkHeader(bytes: Uint8Array, offset = 0): NetlinkHeader {
  const v = viewOf(bytes);
  return {
    length: v.getUint32(offset, HOST_LITTLE_ENDIAN),
    type: v.getUint16(offset + 4, HOST_LITTLE_ENDIAN),
    flags: v.getUint16(offset + 6, HOST_LITTLE_ENDIAN),
    seq: v.getUint32(offset + 8, HOST_LITTLE_ENDIAN),
    pid: v.getUint32(offset + 12, HOST_LITTLE_ENDIAN),
  };
}

/** Writes a `genlmsghdr` at `offset`. */
export function writeGenlHeader(out: Uint8Array, offset: number, header: GenlHeader): void {
  out[offset] = header.cmd;
  out[offset + 1] = header.version;
  viewOf(out).setUint16(offset + 2, header.reserved, HOST_LITTLE_ENDIAN);
}

/** Reads a `genlmsghdr` at `offset`; the caller checks that 4 bytes are there. */
export function readGenlHeader(bytes: Uint8Array, offset: number): GenlHeader {
  return {
    cmd: bytes[offset],
    version: bytes[offset + 1],
    reserved: viewOf(bytes).getUint16(offset + 2, HOST_LITTLE_ENDIAN),
  };
}

/**
 * Splits one netlink datagram into its messages (each a view including its header). Returns an error text
 * when a header is truncated or claims more bytes than the datagram holds; messages before it are kept.
 */
export function splitMessages(datagram: Uint8Array): { messages: Uint8Array[]; error?: string } {
  const messages: Uint8Array[] = [];
  let at = 0;
  while (at < datagram.length) {
    if (datagram.length - at < NLMSG_HDRLEN) {
      return { messages, error: `${datagram.length - at} trailing bytes, shorter than a netlink header` };
    }
    const { length } = readNetlinkHeader(datagram, at);
    if (length < NLMSG_HDRLEN || length > datagram.length - at) {
      return { messages, error: `netlink message length ${length} at offset ${at} does not fit` };
    }
    messages.push(datagram.subarray(at, at + length));
    at += align4(length);
  }
  return { messages };
}

/** Total bytes one attribute takes, padding included. */
export function attributeSize(payloadLength: number): number {
  return align4(NLA_HDRLEN + payloadLength);
}

/**
 * Writes one attribute at `offset` (header, payload, zero padding) and returns the offset after it.
 * `type` may include NLA_F_NESTED.
 */
export function writeAttribute(out: Uint8Array, offset: number, type: number, payload: Uint8Array): number {
  const v = viewOf(out);
  v.setUint16(offset, NLA_HDRLEN + payload.length, HOST_LITTLE_ENDIAN);
  v.setUint16(offset + 2, type, HOST_LITTLE_ENDIAN);
  out.set(payload, offset + NLA_HDRLEN);
  const end = offset + attributeSize(payload.length);
  out.fill(0, offset + NLA_HDRLEN + payload.length, end);
  return end;
}

/** Encodes a list of attributes into a fresh buffer. */
export function encodeAttributes(attributes: readonly { type: number; payload: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(attributes.reduce((n, a) => n + attributeSize(a.payload.length), 0));
  let at = 0;
  for (const a of attributes) at = writeAttribute(out, at, a.type, a.payload);
  return out;
}

/** A u8 attribute payload. */
export function u8(value: number): Uint8Array {
  return Uint8Array.of(value);
}

/** A host-order u16 attribute payload. */
export function u16(value: number): Uint8Array {
  const out = new Uint8Array(2);
  viewOf(out).setUint16(0, value, HOST_LITTLE_ENDIAN);
  return out;
}

/** A host-order u32 attribute payload. */
export function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  viewOf(out).setUint32(0, value, HOST_LITTLE_ENDIAN);
  return out;
}

/**
 * Parses a run of attributes. Strict: a truncated header, an `nla_len` below 4 or past the end is an error
 * (the kernel's own iteration would stop silently there). The last attribute may omit its padding.
 */
export function parseAttributes(bytes: Uint8Array): { ok: true; attributes: Attribute[] } | {
  ok: false;
  error: string;
} {
  const attributes: Attribute[] = [];
  const v = viewOf(bytes);
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < NLA_HDRLEN) {
      return { ok: false, error: `${bytes.length - at} trailing bytes, shorter than an attribute header` };
    }
    const length = v.getUint16(at, HOST_LITTLE_ENDIAN);
    const rawType = v.getUint16(at + 2, HOST_LITTLE_ENDIAN);
    if (length < NLA_HDRLEN || length > bytes.length - at) {
      return { ok: false, error: `attribute length ${length} at offset ${at} does not fit` };
    }
    attributes.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      payload: bytes.subarray(at + NLA_HDRLEN, at + length),
    });
    at += align4(length);
  }
  return { ok: true, attributes };
}

/** Reads a host-order u16 payload, or undefined if it is too short. */
export function readU16(payload: Uint8Array): number | undefined {
  return payload.length >= 2 ? viewOf(payload).getUint16(0, HOST_LITTLE_ENDIAN) : undefined;
}

/** Reads a host-order u32 payload, or undefined if it is too short. */
export function readU32(payload: Uint8Array): number | undefined {
  return payload.length >= 4 ? viewOf(payload).getUint32(0, HOST_LITTLE_ENDIAN) : undefined;
}

/** Reads a NUL-terminated string payload (without a NUL: the whole payload). */
export function readString(payload: Uint8Array): string {
  const nul = payload.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? payload : payload.subarray(0, nul));
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
