/**
 * The VM lab's attacker on the sync link (case `hostile`, scripts/lab/guest/cases.sh): a deterministic set of
 * datagrams nothing may let into a kernel, each labelled with its kind and the drop reason our daemon must
 * count it under (lib/stats.ts `DROP_REASONS`), so the test can compare the receiver's counters with what was
 * sent, reason by reason.
 *
 * Kinds: `random` (random bytes of random length, and entries of the receiver's format with random content), `truncated` (whole entries of the receiver's format cut
 * short), `foreign` (whole entries of the two other formats), `bogus` (entries of the receiver's format with
 * one field out of the kernel's range, lib/session/kernel_limits.ts: the UDP/ICMP timer, the TCP state, the
 * protocol, reserved bits, format A's nested layout), `oversize` (over 2 048 bytes), `empty`, and `probe404`:
 * the 132-byte datagram that oopses a 4.1.9 kernel under upstream joold (Jool #404, fixed in 4.1.10): one
 * format-A entry whose first transport address lacks its port attribute.
 *
 * The labels of the crafted kinds hold by construction; `random` datagrams are labelled with what
 * lib/session/payload.ts says of them (its verdicts are unit- and fuzz-tested; here the lab checks that the
 * running daemon counts what the validator decides). tests/unit/lab_hostile.test.ts checks every label
 * against the validator and that none of the datagrams would be accepted.
 *
 * As a program, run in the attacker's network namespace:
 * `deno run --unstable-net --allow-net --allow-write hostile.ts FORMAT GROUP PORT OUT.json [SEED]` sends them
 * to GROUP:PORT (a few ms apart) and writes the counts by kind and by reason to OUT.json.
 * @module
 */
import { encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import { ENTRY_SIZE } from "../../lib/session/format.ts";
import { MAX_PAYLOAD, validatePayload } from "../../lib/session/payload.ts";
import { concatBytes as concat, HOST_LITTLE_ENDIAN, NLA_F_NESTED } from "../../lib/jool/netlink.ts";
import type { DropReason } from "../../lib/stats.ts";

/** What the attacker sends. */
export const HOSTILE_KINDS = [
  "random",
  "truncated",
  "foreign",
  "bogus",
  "oversize",
  "empty",
  "probe404",
] as const;
/** One of {@link HOSTILE_KINDS}. */
export type HostileKind = typeof HOSTILE_KINDS[number];

/** One datagram and the drop reason the receiver must count it under. */
export interface HostileDatagram {
  readonly kind: HostileKind;
  readonly reason: DropReason;
  /** What is wrong with it, for humans. */
  readonly what: string;
  readonly bytes: Uint8Array;
}

/** The default seed (any seed gives the same kinds and counts; the bytes differ). */
export const DEFAULT_SEED = 0x404;

/** mulberry32: small, deterministic, good enough to pick bytes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A legal session of protocol `proto` (documentation addresses), varied by `i`. */
function session(proto: number, i: number): SessionEntry {
  const src6 = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, i & 0xff);
  return {
    proto,
    state: 0,
    timer: 0,
    expiration: 600_000,
    src6,
    src6Port: 20_000 + i,
    dst6: Uint8Array.of(0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 10),
    dst6Port: 7,
    src4: Uint8Array.of(198, 51, 100, 1),
    src4Port: 62_000 + i,
    dst4: Uint8Array.of(192, 0, 2, 10),
    dst4Port: proto === 2 ? 62_000 + i : 7,
  };
}

function entries(format: SessionFormat, n: number, from: number): Uint8Array {
  return concat(Array.from({ length: n }, (_, k) => encodeEntry(session(1, from + k), format)));
}

/** Entries of `format` with one field out of range, one per datagram (after `lead` good entries). */
function bogus(format: SessionFormat, lead: Uint8Array): { what: string; bytes: Uint8Array }[] {
  const out: { what: string; bytes: Uint8Array }[] = [];
  const one = (what: string, mutate: (e: Uint8Array, v: DataView) => void) => {
    const e = encodeEntry(session(1, 99), format);
    mutate(e, new DataView(e.buffer));
    out.push({ what, bytes: concat([lead, e]) });
  };
  if (format === "A") {
    // u8 attributes at 112 (proto), 120 (state), 128 (timer).
    one("UDP entry, timer 5", (e) => e[128] = 5);
    one("ICMP entry, timer 3", (e) => (e[112] = 2, e[128] = 3));
    one("TCP entry, timer 200", (e) => (e[112] = 0, e[128] = 200));
    one("TCP entry, state 7", (e) => (e[112] = 0, e[120] = 7));
    one("UDP entry, state 255", (e) => e[120] = 255);
    one("protocol 3", (e) => e[112] = 3);
    one("protocol 17", (e) => e[112] = 17);
    one("src4 nest without NLA_F_NESTED", (_, d) => d.setUint16(70, 3, HOST_LITTLE_ENDIAN));
    one("proto padding not zero", (e) => e[113] = 1);
    one("entry type 2", (_, d) => d.setUint16(2, 2 | NLA_F_NESTED, HOST_LITTLE_ENDIAN));
  } else {
    const at = format === "C" ? 38 : 50;
    const pst = (proto: number, state: number, timer: number, extra = 0) => (_: Uint8Array, d: DataView) =>
      d.setUint16(at, ((proto & 3) << 5) | ((state & 7) << 2) | (timer & 3) | extra, false);
    one("UDP entry, timer 3", pst(1, 0, 3));
    one("ICMP entry, timer 3", pst(2, 0, 3));
    one("TCP entry, timer 3", pst(0, 1, 3));
    one("TCP entry, state 7", pst(0, 7, 0));
    one("UDP entry, state 7", pst(1, 7, 0));
    one("protocol 3", pst(3, 0, 0));
    one("reserved bit 7 set", pst(1, 0, 0, 0x80));
    one("reserved bit 15 set", pst(1, 0, 0, 0x8000));
    one("entry type 2", (_, d) => d.setUint16(2, 2, HOST_LITTLE_ENDIAN));
  }
  // An entry header of no known format's size, whole: the kernel would read it as its own format.
  const odd = ENTRY_SIZE[format] + 4;
  const e = new Uint8Array(odd);
  new DataView(e.buffer).setUint16(0, odd, HOST_LITTLE_ENDIAN);
  new DataView(e.buffer).setUint16(2, 1, HOST_LITTLE_ENDIAN);
  out.push({ what: `${odd}-byte entry (no format has that size)`, bytes: concat([lead, e]) });
  return out;
}

/**
 * The #404 probe: a 132-byte format-A entry whose SRC6 nest holds the address but no PORT attribute (the 8
 * bytes of PORT cut out, every length adjusted). A 4.1.9 kernel dereferences the missing attribute.
 */
export function probe404(): Uint8Array {
  const full = encodeEntry(session(1, 0), "A");
  const out = concat([full.subarray(0, 28), full.subarray(36)]); // drop src6.port (offset 28, 8 bytes)
  const v = new DataView(out.buffer);
  v.setUint16(0, 132, HOST_LITTLE_ENDIAN);
  v.setUint16(4, 24, HOST_LITTLE_ENDIAN); // SRC6 nest: header + ADDR only
  return out;
}

/**
 * Every hostile datagram for a receiver whose kernel speaks `format`, in sending order. Deterministic for a
 * given seed; the kinds and their counts do not depend on it.
 */
export function hostileDatagrams(format: SessionFormat, seed = DEFAULT_SEED): HostileDatagram[] {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const out: HostileDatagram[] = [];
  const push = (kind: HostileKind, reason: DropReason, what: string, bytes: Uint8Array) =>
    out.push({ kind, reason, what, bytes });

  for (let i = 0; i < 40; i++) {
    let bytes: Uint8Array;
    let verdict;
    do {
      bytes = Uint8Array.from({ length: int(1, 1500) }, () => int(0, 255));
      verdict = validatePayload(bytes, format);
    } while (verdict.ok); // (never in practice: a random entry header is one of 2^32)
    push("random", verdict.reason, `${bytes.length} random bytes: ${verdict.detail}`, bytes);
  }
  const size = ENTRY_SIZE[format];
  for (let i = 0; i < 20; i++) {
    // Entry headers right (length and type of the local format), bodies random: the field checks' turn.
    let bytes: Uint8Array;
    let verdict;
    do {
      const n = int(1, 3);
      bytes = Uint8Array.from({ length: n * size }, () => int(0, 255));
      const v = new DataView(bytes.buffer);
      for (let k = 0; k < n; k++) {
        v.setUint16(k * size, size, HOST_LITTLE_ENDIAN);
        v.setUint16(k * size + 2, format === "A" ? 1 | NLA_F_NESTED : 1, HOST_LITTLE_ENDIAN);
      }
      verdict = validatePayload(bytes, format);
    } while (verdict.ok);
    push(
      "random",
      verdict.reason,
      `${bytes.length / size} entries of random content: ${verdict.detail}`,
      bytes,
    );
  }
  for (let i = 0; i < 12; i++) {
    const whole = entries(format, int(1, 5), i * 8);
    let cut = int(1, whole.length - 1);
    if (cut % size === 0) cut--; // never at an entry boundary (that would be whole entries)
    push(
      "truncated",
      "net_truncated_entry",
      `${whole.length} bytes of entries cut to ${cut}`,
      whole.slice(0, cut),
    );
  }
  for (const other of (["A", "B", "C"] as const).filter((f) => f !== format)) {
    for (let n = 1; n <= 3; n++) {
      push("foreign", "net_foreign_format", `${n} format ${other} entries`, entries(other, n, n));
    }
  }
  for (const [i, b] of bogus(format, new Uint8Array()).entries()) {
    push("bogus", "net_bad_field", b.what, b.bytes);
    // The same bad entry behind a good one: the datagram is judged whole, the good entry does not get in.
    if (i < 3) {
      push(
        "bogus",
        "net_bad_field",
        `a good entry, then: ${b.what}`,
        concat([entries(format, 1, 50), b.bytes]),
      );
    }
  }
  for (const n of [MAX_PAYLOAD + 1, 4000, 9000, 30_000, 65_000]) {
    push("oversize", "net_oversize", `${n} bytes`, Uint8Array.from({ length: n }, () => int(0, 255)));
  }
  push("empty", "net_empty", "0 bytes", new Uint8Array());
  for (let i = 0; i < 2; i++) {
    push("probe404", "net_bad_field", "Jool #404: a format A transport address without its port", probe404());
  }
  return out;
}

/** Counts of `datagrams` by kind and by reason (what OUT.json holds). */
export function tally(datagrams: readonly HostileDatagram[]): {
  sent: number;
  byKind: Record<string, number>;
  byReason: Record<string, number>;
} {
  const byKind: Record<string, number> = {}, byReason: Record<string, number> = {};
  for (const d of datagrams) {
    byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
    byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
  }
  return { sent: datagrams.length, byKind, byReason };
}

async function main(args: string[]): Promise<number> {
  const [format, group, port, outFile, seed] = args;
  if (!["A", "B", "C"].includes(format) || !group || !Number(port) || !outFile) {
    console.error("usage: hostile.ts A|B|C GROUP PORT OUT.json [SEED]");
    return 2;
  }
  const datagrams = hostileDatagrams(format as SessionFormat, seed ? Number(seed) : DEFAULT_SEED);
  const v6 = group.includes(":");
  const socket = Deno.listenDatagram({ transport: "udp", hostname: v6 ? "::" : "0.0.0.0", port: 0 });
  let failed = 0;
  for (const d of datagrams) {
    try {
      await socket.send(d.bytes, { transport: "udp", hostname: group, port: Number(port) });
    } catch (error) {
      failed++;
      console.error(`hostile: cannot send ${d.kind} (${d.bytes.length} bytes): ${error}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5)); // the receiver's socket buffer is not the test
  }
  socket.close();
  Deno.writeTextFileSync(outFile, JSON.stringify({ ...tally(datagrams), failed, format }, null, 1) + "\n");
  console.log(
    `hostile: sent ${datagrams.length - failed} of ${datagrams.length} datagrams to ${group}:${port}`,
  );
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
