/**
 * Byte builders for the benchmarks: session entries, batches and the kernel's multicast of a batch, built with
 * the project's own codecs (lib/), so the benchmarks feed the daemon exactly what the tests do.
 * @module
 */
import { DOUBLE_FAMILY_ID, encodeFrame } from "../../lib/kernel/double.ts";
import { JOOL_HDRLEN, writeJoolHeader, XT_NAT64 } from "../../lib/jool/header.ts";
import {
  encodeAttributes,
  GENL_HDRLEN,
  NLA_F_NESTED,
  NLMSG_HDRLEN,
  writeGenlHeader,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";
import { encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import type { SessionFormat } from "../../lib/session/format.ts";

/** JNLAR_SESSION_ENTRIES. */
const SESSION_ENTRIES = 7;

/** Session `n`: UDP 2001:db8::n#1000+n → 192.0.2.1#2000+n → 203.0.113.7#53 (dst6 2001:db8:64::n for A/B). */
export function session(n: number): SessionEntry {
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

/** `count` consecutive entries from `first`, concatenated: one batch payload (a datagram's content). */
export function batch(first: number, count: number, format: SessionFormat): Uint8Array {
  const size = encodeEntry(session(0), format).length;
  const out = new Uint8Array(size * count);
  for (let i = 0; i < count; i++) out.set(encodeEntry(session(first + i), format), i * size);
  return out;
}

/** The kernel's multicast of a batch: pid 0, seq 0, genl cmd 0 version 2, Jool 4.1.13 header, one container. */
export function multicast(payload: Uint8Array, instance = "default"): Uint8Array {
  const attrs = encodeAttributes([{ type: NLA_F_NESTED | SESSION_ENTRIES, payload }]);
  const out = new Uint8Array(NLMSG_HDRLEN + GENL_HDRLEN + JOOL_HDRLEN + attrs.length);
  writeNetlinkHeader(out, { length: out.length, type: DOUBLE_FAMILY_ID, flags: 0, seq: 0, pid: 0 });
  writeGenlHeader(out, NLMSG_HDRLEN, { cmd: 0, version: 2, reserved: 0 });
  writeJoolHeader(out, NLMSG_HDRLEN + GENL_HDRLEN, {
    version: { major: 4, minor: 1, revision: 13, dev: 0 },
    xt: XT_NAT64,
    flags: 0,
    iname: instance,
  });
  out.set(attrs, NLMSG_HDRLEN + GENL_HDRLEN + JOOL_HDRLEN);
  return out;
}

/** The same, framed for the kernel double's stdin (u32 BE length + datagram). */
export function multicastFrame(payload: Uint8Array): Uint8Array {
  return encodeFrame(multicast(payload));
}

/**
 * Where a batch's sequence number lives in a format-C payload: bytes 4–7 of the first entry's src6 (after
 * 2001:0db8, so the address stays in the documentation prefix), i.e. payload offset 4 (entry header) + 4.
 */
export const SEQ_OFFSET = 8;
