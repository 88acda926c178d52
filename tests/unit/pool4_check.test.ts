/** The pool4 check (lib/session/pool4_check.ts): which synced sessions pass, in every entry format. */
import { assertEquals } from "../helpers/assert.ts";
import { checkPool4, inPool4, pool4Empty, pool4Table } from "../../lib/session/pool4_check.ts";
import { encodeEntry } from "../../lib/session/entries.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import { sessionOf } from "../helpers/kernel_messages.ts";
import { parsePool4Spec } from "../helpers/pool4_double.ts";

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
}

/** Format C, ICMP 2001:db8::8#5831 → 192.0.2.1#2168 → 192.0.2.8 (docs/protocol.md §5's example). */
const ICMP_C = hex(
  "28 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 08 c0 00 02 01 c0 00 02 08 00 00 e6 78" +
    "16 c7 08 78 08 78 00 40",
);
/** The same bytes as a TCP session (packed field 0) whose src4 is 203.0.113.9#8080. */
const TCP_OUTSIDE_C = hex(
  "28 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 08 cb 00 71 09 c0 00 02 08 00 00 e6 78" +
    "16 c7 1f 90 1f 90 00 00",
);

const TABLE = pool4Table(parsePool4Spec(
  "tcp:192.0.2.0/24:1024-65535,udp:192.0.2.1/32:2000-2999:5,icmp:192.0.2.0/30:0-65535",
));

Deno.test("inPool4: prefix, port range and protocol; marks merged", () => {
  assertEquals(inPool4(TABLE, 0, 0xc0000263, 1024), true); // 192.0.2.99#1024
  assertEquals(inPool4(TABLE, 0, 0xc0000263, 1023), false); // below the range
  assertEquals(inPool4(TABLE, 0, 0xc0000363, 5000), false); // 192.0.3.99: outside the /24
  assertEquals(inPool4(TABLE, 1, 0xc0000201, 2999), true); // UDP table of mark 5
  assertEquals(inPool4(TABLE, 1, 0xc0000202, 2500), false); // UDP: only .1
  assertEquals(inPool4(TABLE, 2, 0xc0000203, 0), true); // ICMP /30
  assertEquals(inPool4(TABLE, 2, 0xc0000204, 0), false);
  assertEquals(inPool4(TABLE, 3, 0xc0000201, 2500), false); // no such protocol table
  const all = pool4Table(parsePool4Spec("tcp:0.0.0.0/0:1-65535"));
  assertEquals(inPool4(all, 0, 0xffffffff, 65535), true);
  assertEquals(pool4Empty(all), false);
  assertEquals(pool4Empty(pool4Table([])), true);
});

Deno.test("checkPool4, format C bytes: the inside session passes alone, the payload re-encoded", () => {
  const mixed = concatBytes([ICMP_C, TCP_OUTSIDE_C, ICMP_C]);
  const result = checkPool4(mixed, "C", TABLE);
  assertEquals(result.sessions, 2);
  assertEquals(result.outside, 1);
  assertEquals(result.firstOutside, "TCP 203.0.113.9#8080");
  assertEquals(result.payload, concatBytes([ICMP_C, ICMP_C]));
  // All inside: the same bytes, not a copy.
  const inside = concatBytes([ICMP_C, ICMP_C]);
  const same = checkPool4(inside, "C", TABLE);
  assertEquals([same.payload === inside, same.sessions, same.outside], [true, 2, 0]);
  // All outside: nothing left.
  const none = checkPool4(TCP_OUTSIDE_C, "C", TABLE);
  assertEquals([none.payload.length, none.sessions, none.outside], [0, 0, 1]);
  // An empty pool4 lets nothing pass.
  assertEquals(checkPool4(inside, "C", pool4Table([])).outside, 2);
});

Deno.test("checkPool4, formats A and B: src4 read where each format keeps it (A: host-order port)", () => {
  for (const format of ["A", "B", "C"] as SessionFormat[]) {
    // sessionOf(n): UDP, src4 192.0.2.1#(2000+n).
    const inside = encodeEntry(sessionOf(500), format); // port 2500
    const outsidePort = encodeEntry(sessionOf(1200), format); // port 3200
    const outsideAddress = encodeEntry({ ...sessionOf(1), src4: Uint8Array.of(192, 0, 2, 2) }, format);
    const tcp = encodeEntry({ ...sessionOf(1), proto: 0, src4Port: 4000 }, format); // TCP table: /24, ≥1024
    const result = checkPool4(concatBytes([outsidePort, inside, outsideAddress, tcp]), format, TABLE);
    assertEquals(
      [result.sessions, result.outside, result.firstOutside],
      [2, 2, "UDP 192.0.2.1#3200"],
      `format ${format}`,
    );
    assertEquals(result.payload, concatBytes([inside, tcp]), `format ${format}`);
  }
});
