/** The VM lab's hostile datagrams (scripts/lab/hostile.ts): every label is what the validator decides, none gets in. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { HOSTILE_KINDS, hostileDatagrams, probe404, tally } from "../../scripts/lab/hostile.ts";
import { validatePayload } from "../../lib/session/payload.ts";
import { decodeEntry } from "../../lib/session/entries.ts";

for (const format of ["A", "B", "C"] as const) {
  Deno.test(`lab hostile datagrams, format ${format}: each is dropped, under the reason it is labelled with`, () => {
    const datagrams = hostileDatagrams(format);
    for (const d of datagrams) {
      const verdict = validatePayload(d.bytes, format);
      assert(!verdict.ok, `${d.kind} (${d.what}) would be accepted`);
      assertEquals(verdict.reason, d.reason, `${d.kind} (${d.what}): ${verdict.detail}`);
    }
    const t = tally(datagrams);
    assertEquals(Object.keys(t.byKind).sort(), [...HOSTILE_KINDS].sort());
    assertEquals(t.sent, datagrams.length);
  });
}

Deno.test("lab hostile datagrams: deterministic for a seed; the kinds and counts do not depend on it", () => {
  const a = hostileDatagrams("C", 7), b = hostileDatagrams("C", 7), c = hostileDatagrams("C", 8);
  assertEquals(a.map((d) => [...d.bytes]), b.map((d) => [...d.bytes]));
  assertEquals(tally(a).byKind, tally(c).byKind);
  assert(
    a.some((d, i) => d.bytes.length !== c[i].bytes.length || d.bytes.some((x, j) => x !== c[i].bytes[j])),
  );
});

Deno.test("lab hostile datagrams: the #404 probe is a 132-byte format A entry whose SRC6 lacks its port", () => {
  const p = probe404();
  const v = new DataView(p.buffer);
  assertEquals(p.length, 132);
  assertEquals(v.getUint16(0, true), 132); // entry nla_len (x86: host order is little-endian)
  assertEquals(v.getUint16(4, true), 24); // SRC6 nest: 4 + ADDR (20)
  assertEquals(v.getUint16(8, true), 20); // ADDR attribute
  assertEquals(v.getUint16(28, true), 32); // next: the DST6 nest, whole
  assertEquals(v.getUint16(30, true) & 0x3fff, 2);
  assert(!decodeEntry(p, "A").ok);
});
