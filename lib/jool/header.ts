/**
 * The Jool header (`struct joolnlhdr`, docs/protocol.md §1.3): 28 bytes after the genl header — magic "jool", BE version,
 * translator type, flags, two reserved bytes and a 16-byte instance name.
 * @module
 */
import { viewOf } from "./netlink.ts";

/** Shared coders: one per module, not one per message (a TextDecoder is costly to construct). */
const INAME_DECODER = new TextDecoder();
const INAME_ENCODER = new TextEncoder();

/** Bytes of `struct joolnlhdr`. */
export const JOOL_HDRLEN = 28;
/** Bytes of the instance name field, NUL included. */
export const INAME_SIZE = 16;
/** ASCII "jool". */
export const JOOL_MAGIC: Uint8Array = Uint8Array.of(0x6a, 0x6f, 0x6f, 0x6c);

/** Translator types (`xt`). joold always sends NAT64. */
export const XT_SIIT = 1;
/** `xt` value of NAT64 Jool (1 is SIIT); joold always sends it. */
export const XT_NAT64 = 2;

/** Jool header flags. */
export const JOOLNLHDR_FLAGS_ERROR = 0x01;
/** Header flag FORCE (unused by joold). */
export const JOOLNLHDR_FLAGS_FORCE = 0x02;
/** Header flag QUICK (unused by joold). */
export const JOOLNLHDR_FLAGS_QUICK = 0x04;
/** "More data": a foreach reply that needs another request with an offset. */
export const JOOLNLHDR_FLAGS_M = 0x08;

/** A Jool version major.minor.revision.dev; each part is one byte on the wire. */
export interface JoolVersion {
  /** Major version (4). */
  readonly major: number;
  /** Minor version (1). */
  readonly minor: number;
  /** Revision (9 … 15; 255 is the 4.2 release candidate). */
  readonly revision: number;
  /** Development number (0 for releases). */
  readonly dev: number;
}

/** The version this daemon announces when the kernel's is unknown (the kernel checks only major.minor). */
export const DEFAULT_REQUEST_VERSION: JoolVersion = { major: 4, minor: 1, revision: 15, dev: 0 };

/** Packs a version into the header's u32 (major<<24 | minor<<16 | revision<<8 | dev). */
export function packVersion(v: JoolVersion): number {
  return ((v.major << 24) | (v.minor << 16) | (v.revision << 8) | v.dev) >>> 0;
}

/** Unpacks the header's u32. */
export function unpackVersion(n: number): JoolVersion {
  return { major: n >>> 24, minor: (n >>> 16) & 0xff, revision: (n >>> 8) & 0xff, dev: n & 0xff };
}

/** "4.1.13" or "4.1.13.1" (dev shown only when non-zero). */
export function versionText(v: JoolVersion): string {
  return `${v.major}.${v.minor}.${v.revision}${v.dev ? `.${v.dev}` : ""}`;
}

/** `struct joolnlhdr`, decoded. */
export interface JoolHeader {
  /** The sender's version (the kernel's in a multicast, the requester's in a reply). */
  readonly version: JoolVersion;
  /** Translator type: 1 SIIT, 2 NAT64. */
  readonly xt: number;
  /** ERROR (0x01), FORCE, QUICK, M (0x08) bits. */
  readonly flags: number;
  /** Instance name up to its NUL. */
  readonly iname: string;
}

/**
 * Checks an instance name against Jool's rules: at most 15 bytes (so a NUL fits in 16), every byte ≥ 0x20.
 * Returns an error text or undefined.
 */
export function inameError(name: string): string | undefined {
  const bytes = INAME_ENCODER.encode(name);
  if (bytes.length > INAME_SIZE - 1) {
    return `instance name "${name}" is ${bytes.length} bytes long; Jool allows at most ${INAME_SIZE - 1}`;
  }
  const bad = bytes.findIndex((b) => b < 0x20);
  if (bad >= 0) return `instance name "${name}" has a control character at byte ${bad}`;
  return undefined;
}

/** Encodes an instance name as the zero-filled 16-byte field. Throws RangeError on an invalid name. */
export function encodeIname(name: string): Uint8Array {
  const error = inameError(name);
  if (error) throw new RangeError(error);
  const out = new Uint8Array(INAME_SIZE);
  out.set(INAME_ENCODER.encode(name));
  return out;
}

/** Writes a Jool header at `offset`. */
export function writeJoolHeader(out: Uint8Array, offset: number, header: JoolHeader): void {
  out.set(JOOL_MAGIC, offset);
  viewOf(out).setUint32(offset + 4, packVersion(header.version), false);
  out[offset + 8] = header.xt;
  out[offset + 9] = header.flags;
  out[offset + 10] = 0;
  out[offset + 11] = 0;
  out.set(encodeIname(header.iname), offset + 12);
}

/**
 * Reads a Jool header at `offset` (the caller checks that 28 bytes are there).
 * Returns an error text for a bad magic or an iname without NUL / with control characters.
 */
export function readJoolHeader(bytes: Uint8Array, offset: number): { ok: true; header: JoolHeader } | {
  ok: false;
  error: string;
} {
  for (let i = 0; i < 4; i++) {
    if (bytes[offset + i] !== JOOL_MAGIC[i]) return { ok: false, error: "bad magic (not a Jool message)" };
  }
  const field = bytes.subarray(offset + 12, offset + 12 + INAME_SIZE);
  const nul = field.indexOf(0);
  if (nul < 0) return { ok: false, error: "instance name without NUL" };
  for (let i = 0; i < nul; i++) {
    if (field[i] < 0x20) return { ok: false, error: "instance name with control characters" };
  }
  return {
    ok: true,
    header: {
      version: unpackVersion(viewOf(bytes).getUint32(offset + 4, false)),
      xt: bytes[offset + 8],
      flags: bytes[offset + 9],
      iname: INAME_DECODER.decode(field.subarray(0, nul)),
    },
  };
}

/**
 * Whether a header's instance name designates `instance`: upstream ≥4.1.12 compares case-insensitively;
 * an empty name means "default" on the kernel side.
 */
export function sameInstance(headerName: string, instance: string): boolean {
  const a = headerName === "" ? "default" : headerName;
  const b = instance === "" ? "default" : instance;
  if (a.length !== b.length) return false;
  // A plain loop, not a regex: this runs before every ACK, and a first regex execution costs milliseconds on a
  // slow CPU (measured: 17 ms under QEMU TCG on the first batch), while the kernel waits for that ACK.
  for (let i = 0; i < a.length; i++) {
    if (asciiLower(a.charCodeAt(i)) !== asciiLower(b.charCodeAt(i))) return false;
  }
  return true;
}

/** Lower-cases A–Z only, like C's strcasecmp in the "C" locale. */
function asciiLower(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code + 32 : code;
}
