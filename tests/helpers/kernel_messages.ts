/**
 * Byte builders for what the Jool kernel sends (multicast batches, replies), shared by the tests and the
 * benchmarks. Built with the project's own netlink codec, following docs/protocol.md §2.1.
 * @module
 */
import { DOUBLE_FAMILY_ID, encodeFrame } from "./kernel_double.ts";
import { encodeIname } from "../../lib/jool/header.ts";
import {
  concatBytes,
  encodeAttributes,
  NLA_F_NESTED,
  u16,
  writeGenlHeader,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";
import { encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import type { SessionFormat } from "../../lib/session/format.ts";

/** Session `n`: UDP 2001:db8::n#1000+n → 192.0.2.1#2000+n → 203.0.113.7#53 (dst6 2001:db8:64::n for A/B). */
export function sessionOf(n: number): SessionEntry {
  return {
    proto: 1,
    state: 0,
    timer: 0,
    expiration: 59_000 + n,
    src6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (n >> 8) & 0xff, n & 0xff),
    src6Port: (1000 + n) & 0xffff,
    dst6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, (n >> 8) & 0xff, n & 0xff),
    dst6Port: 53,
    src4: Uint8Array.of(192, 0, 2, 1),
    src4Port: (2000 + n) & 0xffff,
    dst4: Uint8Array.of(203, 0, 113, 7),
    dst4Port: 53,
  };
}

/** Session `n` ({@link sessionOf}) encoded in `format`. */
export function sessionEntry(n: number, format: SessionFormat = "C"): Uint8Array {
  return encodeEntry(sessionOf(n), format);
}

/**
 * The numbers `n` of the {@link sessionOf} sessions in format-C `containers` (e.g. the JOOLD_ADDs a daemon's
 * double received): the last two bytes of each entry's src6.
 */
export function sessionNumbers(containers: Iterable<Uint8Array>): Set<number> {
  const out = new Set<number>();
  for (const container of containers) {
    for (let at = 0; at + 40 <= container.length; at += 40) {
      out.add((container[at + 18] << 8) | container[at + 19]);
    }
  }
  return out;
}

/** `count` consecutive entries starting at `first`, concatenated: one batch payload. */
export function sessionBatch(first: number, count: number, format: SessionFormat = "C"): Uint8Array {
  return concatBytes(Array.from({ length: count }, (_, i) => sessionEntry(first + i, format)));
}

/** A kernel message: multicast (pid 0, seq 0) or reply; genl cmd 0 version 2; Jool header; attributes. */
export function kernelMessage(
  options: {
    iname?: string;
    version?: number[];
    flags?: number;
    seq?: number;
    pid?: number;
    familyId?: number;
  },
  attributes: { type: number; payload: Uint8Array }[],
): Uint8Array {
  const attrs = encodeAttributes(attributes);
  const out = new Uint8Array(48 + attrs.length);
  writeNetlinkHeader(out, {
    length: out.length,
    type: options.familyId ?? DOUBLE_FAMILY_ID,
    flags: 0,
    seq: options.seq ?? 0,
    pid: options.pid ?? 0,
  });
  writeGenlHeader(out, 16, { cmd: 0, version: 2, reserved: 0 });
  out.set([0x6a, 0x6f, 0x6f, 0x6c], 20);
  out.set(options.version ?? [4, 1, 13, 0], 24);
  out[28] = 2;
  out[29] = options.flags ?? 0;
  out.set(encodeIname(options.iname ?? "default"), 32);
  out.set(attrs, 48);
  return out;
}

/** The kernel's multicast of one batch (SESSION_ENTRIES with NLA_F_NESTED). */
export function multicastBatch(payload: Uint8Array, iname = "default", version?: number[]): Uint8Array {
  return kernelMessage({ iname, version }, [{ type: NLA_F_NESTED | 7, payload }]);
}

/** The same, framed for the kernel double's stdin. */
export function multicastFrame(payload: Uint8Array, iname = "default", version?: number[]): Uint8Array {
  return encodeFrame(multicastBatch(payload, iname, version));
}

/** A Jool error reply (flags ERROR, CODE + MSG). */
export function errorReply(code: number, message: string, pid: number): Uint8Array {
  return kernelMessage({ flags: 1, seq: 77, pid }, [
    { type: 1, payload: u16(code) },
    { type: 2, payload: new TextEncoder().encode(message + "\0") },
  ]);
}
