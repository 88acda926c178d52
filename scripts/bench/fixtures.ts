/**
 * Byte builders for the benchmarks: the tests' own builders (tests/helpers/kernel_messages.ts, made with the
 * project's codecs), so the benchmarks feed the daemon exactly what the tests do, plus the sequence-number slot.
 * @module
 */
import {
  multicastBatch,
  multicastFrame as frame,
  sessionBatch,
  sessionOf,
} from "../../tests/helpers/kernel_messages.ts";
import type { SessionEntry } from "../../lib/session/entries.ts";
import type { SessionFormat } from "../../lib/session/format.ts";

/** Session `n`: UDP 2001:db8::n#1000+n → 192.0.2.1#2000+n → 203.0.113.7#53 (dst6 2001:db8:64::n for A/B). */
export const session: (n: number) => SessionEntry = sessionOf;

/** `count` consecutive entries from `first`, concatenated: one batch payload (a datagram's content). */
export function batch(first: number, count: number, format: SessionFormat): Uint8Array {
  return sessionBatch(first, count, format);
}

/** The kernel's multicast of a batch: pid 0, seq 0, genl cmd 0 version 2, Jool 4.1.13 header, one container. */
export function multicast(payload: Uint8Array, instance = "default"): Uint8Array {
  return multicastBatch(payload, instance);
}

/** The same, framed for the kernel double's stdin (u32 BE length + datagram). */
export function multicastFrame(payload: Uint8Array): Uint8Array {
  return frame(payload);
}

/**
 * Where a batch's sequence number lives in a format-C payload: bytes 4–7 of the first entry's src6 (after
 * 2001:0db8, so the address stays in the documentation prefix), i.e. payload offset 4 (entry header) + 4.
 */
export const SEQ_OFFSET = 8;
