/** Session entries in formats A, B and C, field by field (docs/protocol.md §5), and datagram payload validation (§6.1). */
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { decodeEntry, encodeEntry, packPst, type SessionEntry } from "../../lib/session/entries.ts";
import { countSessions, formatBySize, MAX_PAYLOAD, validatePayload } from "../../lib/session/payload.ts";
import type { SessionFormat } from "../../lib/session/format.ts";

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/[^0-9a-f]/gi, "").match(/../g)!, (b) => parseInt(b, 16));
}

/** The §1.6 example entry (format C). */
const SPEC_ENTRY = hex(
  "28000100 20010db8 00000000 00000000 00000008 c0000201 c0000208 0000e678 16c7 0878 0878 0040",
);

const SRC6 = hex("20010db8000000000000000000000008");
const DST6 = hex("0064ff9b0000000000000000c0000208"); // 64:ff9b::192.0.2.8
const FULL: SessionEntry = {
  proto: 0,
  state: 1,
  timer: 2,
  expiration: 59_000,
  src6: SRC6,
  src6Port: 5831,
  dst6: DST6,
  dst6Port: 80,
  src4: Uint8Array.of(192, 0, 2, 1),
  src4Port: 2168,
  dst4: Uint8Array.of(192, 0, 2, 8),
  dst4Port: 80,
};

function concat(...parts: Uint8Array[]): Uint8Array {
  return payloadOf(parts);
}

function payloadOf(entries: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(entries.reduce((n, e) => n + e.length, 0));
  let at = 0;
  for (const e of entries) {
    out.set(e, at);
    at += e.length;
  }
  return out;
}

Deno.test("format C: the documented entry decodes field by field and re-encodes byte-identically", () => {
  const r = decodeEntry(SPEC_ENTRY, "C");
  assert(r.ok, JSON.stringify(r));
  assertEquals(r.entry, {
    proto: 2,
    state: 0,
    timer: 0,
    src6: SRC6,
    src4: Uint8Array.of(192, 0, 2, 1),
    dst4: Uint8Array.of(192, 0, 2, 8),
    expiration: 59_000,
    src6Port: 5831,
    src4Port: 2168,
    dst4Port: 2168,
  });
  assertEquals(encodeEntry(r.entry, "C"), SPEC_ENTRY);
  assertEquals(packPst(2, 0, 0), 0x40);
});

Deno.test("format B: a 52-byte entry built from the documented layout", () => {
  const expected = hex(
    "34000100" + "20010db8000000000000000000000008" + "0064ff9b0000000000000000c0000208" + "c0000201" +
      "0000e678" + "16c7" + "0050" + "0878" + "0006",
  );
  assertEquals(encodeEntry(FULL, "B"), expected);
  const r = decodeEntry(expected, "B");
  assert(r.ok);
  assertEquals([r.entry.proto, r.entry.state, r.entry.timer, r.entry.dst6Port], [0, 1, 2, 80]);
  assertEquals(r.entry.dst4, undefined);
});

Deno.test("format A: 140 bytes of nested attributes, host-order ports and expiration; nested flag optional", () => {
  const a = encodeEntry(FULL, "A");
  assertEquals(a.length, 140);
  // Entry header, then SRC6 nest with its ADDR and PORT (host order, little-endian here).
  assertEquals([...a.subarray(0, 12)], [140, 0, 1, 0x80, 32, 0, 1, 0x80, 20, 0, 1, 0]);
  assertEquals([...a.subarray(28, 34)], [6, 0, 2, 0, 0xc7, 0x16]);
  assertEquals([...a.subarray(132, 140)], [8, 0, 8, 0, 0x78, 0xe6, 0, 0]);
  const r = decodeEntry(a, "A");
  assert(r.ok, JSON.stringify(r));
  assertEquals(r.entry, FULL);
  // Built by a pre-5.2 kernel: no NLA_F_NESTED anywhere.
  const plain = encodeEntry(FULL, "A", false);
  assertEquals([...plain.subarray(0, 8)], [140, 0, 1, 0, 32, 0, 1, 0]);
  assert(decodeEntry(plain, "A").ok);
  // A missing PORT (the #404 crash) or a reshuffled layout is rejected.
  const noPort = a.slice();
  noPort[30] = 3;
  const bad = decodeEntry(noPort, "A");
  assertEquals(!bad.ok && bad.field, "src6.port");
  // Only what a Jool kernel builds: zero padding, NLA_F_NESTED on all five nests or none (so that every
  // accepted entry re-encodes byte for byte), no other flag.
  const field = (bytes: Uint8Array) => ((r) => !r.ok && r.field)(decodeEntry(bytes, "A"));
  const padded = a.slice();
  padded[34] = 1; // src6.port's padding
  assertEquals(field(padded), "src6.port padding");
  const protoPad = a.slice();
  protoPad[115] = 0xff;
  assertEquals(field(protoPad), "proto padding");
  const mixed = a.slice();
  mixed[39] = 0; // DST6 without NLA_F_NESTED while the entry has it
  assertEquals(field(mixed), "dst6");
  const mixedEntry = plain.slice();
  mixedEntry[3] = 0x80; // the entry has it, its nests do not
  assertEquals(field(mixedEntry), "src6");
  const byteOrder = plain.slice();
  byteOrder[3] = 0x40; // NLA_F_NET_BYTEORDER on the entry
  assertEquals(field(byteOrder), "nla_type");
  assertEquals(
    ((r) => r.ok ? "ok" : r.reason)(validatePayload(concat(plain, padded), "A")),
    "net_bad_field",
  );
});

Deno.test("entries: out-of-range protocol, TCP state, TCP timer and reserved bits are rejected", () => {
  const cases: [Partial<SessionEntry>, string][] = [
    [{ proto: 3 }, "proto"],
    [{ state: 7 }, "state"],
  ];
  for (const format of ["A", "B", "C"] as SessionFormat[]) {
    for (const [change, field] of cases) {
      const bytes = encodeEntry(FULL, format);
      // Write the bad value straight into the bytes (encodeEntry refuses it).
      const e = { ...FULL, ...change };
      if (format === "A") {
        bytes[112] = e.proto;
        bytes[120] = e.state;
      } else {
        const at = format === "B" ? 50 : 38;
        new DataView(bytes.buffer).setUint16(
          at,
          ((e.proto & 3) << 5) | ((e.state & 7) << 2) | e.timer,
          false,
        );
      }
      const r = decodeEntry(bytes, format);
      assertEquals(!r.ok && r.field, field, `${format} ${field}`);
    }
  }
  const c = encodeEntry(FULL, "C");
  c[39] = (c[39] & ~3) | 3; // TCP timer 3
  assertEquals(((r) => !r.ok && r.field)(decodeEntry(c, "C")), "timer");
  const reserved = encodeEntry(FULL, "C");
  reserved[38] = 0x80;
  assertEquals(((r) => !r.ok && r.field)(decodeEntry(reserved, "C")), "flags");
  assertThrows(() => encodeEntry({ ...FULL, proto: 5 }, "C"), RangeError);
  assertThrows(() => encodeEntry({ ...FULL, dst4: undefined }, "C"), RangeError);
});

Deno.test("entries: a UDP or ICMP entry with an unknown timer is dropped in every format (the kernel's queue_unsorted_session() rejects it)", () => {
  // Jool 4.1.9 logged "incoming joold session's timer (5) is unknown" and "sessiondb_add() threw unknown error
  // code -22" for such a UDP entry: the validator used to check the timer of TCP entries only.
  for (const format of ["A", "B", "C"] as SessionFormat[]) {
    for (const proto of [1, 2]) {
      for (const timer of format === "A" ? [3, 5, 255] : [3]) {
        const bytes = encodeEntry({ ...FULL, proto, state: 0, timer: 0 }, format);
        if (format === "A") bytes[128] = timer;
        else bytes[format === "B" ? 51 : 39] |= timer;
        const label = `format ${format} proto ${proto} timer ${timer}`;
        const r = decodeEntry(bytes, format);
        assertEquals(!r.ok && r.field, "timer", label);
        const p = validatePayload(payloadOf([encodeEntry({ ...FULL, proto }, format), bytes]), format);
        assertEquals(p.ok ? "ok" : p.reason, "net_bad_field", label);
        assert(!p.ok && p.detail.startsWith("entry 1: timer"), label);
      }
    }
  }
});

Deno.test("payload: valid batches of each format count their sessions", () => {
  for (const format of ["A", "B", "C"] as SessionFormat[]) {
    const p = payloadOf([encodeEntry(FULL, format), encodeEntry(FULL, format)]);
    assertEquals(validatePayload(p, format), { ok: true, sessions: 2 });
    assertEquals(countSessions(p), 2);
    assertEquals(formatBySize(p), format);
  }
  const c36 = payloadOf(Array.from({ length: 36 }, () => SPEC_ENTRY));
  assertEquals(c36.length, 1440);
  assertEquals(validatePayload(c36, "C"), { ok: true, sessions: 36 });
});

Deno.test("payload: empty, oversize, truncated, foreign format and bad fields are dropped by reason", () => {
  const reason = (p: Uint8Array, f: SessionFormat = "C") => {
    const r = validatePayload(p, f);
    return r.ok ? "ok" : r.reason;
  };
  assertEquals(reason(new Uint8Array(0)), "net_empty");
  assertEquals(reason(new Uint8Array(MAX_PAYLOAD + 1)), "net_oversize");
  assertEquals(reason(payloadOf(Array.from({ length: 52 }, () => SPEC_ENTRY))), "net_oversize");
  assertEquals(reason(payloadOf([SPEC_ENTRY, SPEC_ENTRY.subarray(0, 20)])), "net_truncated_entry");
  assertEquals(reason(payloadOf([SPEC_ENTRY, SPEC_ENTRY.subarray(0, 2)])), "net_truncated_entry");
  assertEquals(reason(encodeEntry(FULL, "A")), "net_foreign_format"); // whole 140-byte entries to a C kernel
  assertEquals(reason(encodeEntry(FULL, "B")), "net_foreign_format");
  assertEquals(reason(SPEC_ENTRY, "A"), "net_foreign_format");
  const oddLength = SPEC_ENTRY.slice();
  oddLength[0] = 36; // the kernel would read 4 bytes past this entry
  assertEquals(reason(payloadOf([oddLength, new Uint8Array(4)])), "net_bad_field");
  const wrongType = SPEC_ENTRY.slice();
  wrongType[2] = 2;
  assertEquals(reason(wrongType), "net_bad_field");
  const badProto = SPEC_ENTRY.slice();
  badProto[39] = 0x60; // proto 3
  assertEquals(reason(payloadOf([SPEC_ENTRY, badProto])), "net_bad_field");
  assertEquals(countSessions(SPEC_ENTRY.subarray(0, 30)), undefined);
});
