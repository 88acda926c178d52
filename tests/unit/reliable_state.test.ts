/**
 * The reliable mode's state: the sequence tracker (gaps, duplicates, reordering, NACK timing, losses), the
 * resend buffer, the session cache (keys, expiry, bounds, digests) and the in-sync state machine.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { SequenceTracker } from "../../lib/reliable/sequence.ts";
import { RESEND_SLOT_BYTES, ResendBuffer } from "../../lib/reliable/resend_buffer.ts";
import { expirationOf, keyHash, sameKey, SessionCache } from "../../lib/reliable/session_cache.ts";
import { allInSync, Peer, trackValue } from "../../lib/reliable/peers.ts";
import { encodeEntry } from "../../lib/session/entries.ts";
import { sessionBatch, sessionEntry, sessionOf } from "../helpers/kernel_messages.ts";

const TIMING = { reorderMs: 30, retryMs: 200, maxNacks: 3, maxGap: 100 };

Deno.test("sequence: in order, gap, reordered fill, duplicate", () => {
  const t = new SequenceTracker(TIMING);
  assertEquals(t.accept(10, 0), "next"); // the first one starts the count
  assertEquals(t.accept(11, 0), "next");
  assertEquals(t.accept(14, 0), "ahead"); // 12, 13 missing
  assertEquals(t.missing, 2);
  assertEquals(t.accept(12, 5), "filled"); // before any NACK: reordering
  assertEquals(t.accept(12, 6), "duplicate");
  assertEquals(t.accept(9, 6), "duplicate"); // older than the first seen
  assertEquals(t.counters, {
    received: 4,
    gaps: 2,
    duplicates: 2,
    reordered: 1,
    recovered: 0,
    lost: 0,
    nacks: 0,
  });
});

Deno.test("sequence: NACKs wait for reordering, merge into ranges, retry, then give up", () => {
  const t = new SequenceTracker(TIMING);
  t.accept(1, 0);
  t.accept(5, 0); // 2, 3, 4 missing
  t.accept(7, 0); // 6 missing
  assertEquals(t.due(10), { nack: [], lost: 0 }, "within the reorder wait");
  assertEquals(t.due(30), { nack: [[2, 4], [6, 6]], lost: 0 });
  assertEquals(t.due(100), { nack: [], lost: 0 }, "within the retry time");
  assertEquals(t.accept(3, 120), "filled");
  assertEquals(t.counters.recovered, 1, "after a NACK: recovered, not reordered");
  assertEquals(t.due(230), { nack: [[2, 2], [4, 4], [6, 6]], lost: 0 });
  assertEquals(t.due(430), { nack: [[2, 2], [4, 4], [6, 6]], lost: 0 });
  assertEquals(t.due(630), { nack: [], lost: 3 }, "three NACKs unanswered: lost");
  assertEquals(t.missing, 0);
  const c = t.counters;
  assertEquals(c.gaps, c.reordered + c.recovered + c.lost + t.missing);
});

Deno.test("sequence: a heartbeat reveals a lost tail; a jump past the resend buffer is lost at once", () => {
  const t = new SequenceTracker(TIMING);
  t.observeLatest(5, 0);
  assertEquals(t.expected, 6, "a heartbeat before any datagram only sets the start");
  t.accept(6, 0);
  t.observeLatest(8, 1);
  assertEquals(t.missing, 2);
  assertEquals(t.forget(7, 7), 1, "UNAVAILABLE");
  t.accept(8, 2);
  t.accept(500, 3);
  assertEquals(t.takeJumpLosses(), 491, "9 … 499");
  assertEquals(t.takeJumpLosses(), 0);
  assertEquals(t.missing, 0);
  const c = t.counters;
  assertEquals(c.gaps, c.reordered + c.recovered + c.lost + t.missing);
});

Deno.test("resend buffer: keeps the last `capacity` frames by sequence", () => {
  const buffer = new ResendBuffer(4);
  assertEquals(buffer.oldest, 0);
  for (let seq = 1; seq <= 6; seq++) buffer.keep(seq, Uint8Array.of(seq));
  assertEquals([buffer.oldest, buffer.newest], [3, 6]);
  assertEquals(buffer.get(2), undefined, "overwritten");
  assertEquals(buffer.get(3), Uint8Array.of(3));
  assertEquals(buffer.get(6), Uint8Array.of(6));
  assertEquals(buffer.get(7), undefined, "never sent");
});

Deno.test("resend buffer: a copy, not the frame kept; large frames and a frame shorter than its slot's last", () => {
  const buffer = new ResendBuffer(2);
  const frame = Uint8Array.of(1, 2, 3);
  buffer.keep(1, frame);
  frame[0] = 9; // the caller's array is not the buffer's
  assertEquals(buffer.get(1), Uint8Array.of(1, 2, 3));
  const large = new Uint8Array(RESEND_SLOT_BYTES + 1).fill(7);
  buffer.keep(2, large);
  assertEquals(buffer.get(2), large);
  buffer.keep(3, Uint8Array.of(5)); // slot 1 again, shorter than before
  assertEquals(buffer.get(3), Uint8Array.of(5));
  buffer.keep(4, Uint8Array.of(6, 6)); // slot 0: the large frame is forgotten
  assertEquals(buffer.get(4), Uint8Array.of(6, 6));
  assertEquals(buffer.get(2), undefined);
});

Deno.test("session cache: key ignores state, timer and expiration; differs by address, port, protocol", () => {
  for (const format of ["A", "B", "C"] as const) {
    const base = sessionOf(1);
    const bytes = encodeEntry(base, format);
    const same = (entry: typeof base) => {
      const other = encodeEntry(entry, format);
      const equal = sameKey(bytes, 0, other, 0, format);
      if (equal) assertEquals(keyHash(other, 0, format), keyHash(bytes, 0, format), format);
      return equal;
    };
    assert(same({ ...base, expiration: 5, state: 0, timer: 1 }), format);
    assert(!same({ ...base, src6Port: 9 }), format);
    assert(!same({ ...base, src4Port: 9 }), format);
    assert(!same({ ...base, src6: sessionOf(2).src6 }), format);
    assert(!same({ ...base, proto: 0 }), format);
  }
});

Deno.test("session cache: update in place, expiry, bound, digests by origin", () => {
  let now = 0;
  const cache = new SessionCache("C", 3, () => now);
  cache.put(sessionBatch(1, 2), 0xa); // sessions 1, 2 (expire at 59 001, 59 002)
  cache.put(sessionEntry(1), 0xb); // session 1 again, now from b
  assertEquals(cache.size, 2);
  assertEquals(cache.digest(0xa).count, 1);
  assertEquals(cache.digest(0xb).count, 1);
  cache.put(sessionBatch(3, 2), 0xa); // 3 fits, 4 does not
  assertEquals(cache.size, 3);
  assertEquals(cache.counters.full, 1);
  // The digest is order-independent: the same sessions in another order, same digest.
  const other = new SessionCache("C", 10, () => now);
  other.put(sessionEntry(3), 0xa);
  other.put(sessionEntry(2), 0xa);
  assertEquals(other.digest(0xa), cache.digest(0xa));

  now = 30_000;
  const slots = cache.snapshot(0).get(0xa)!; // sessions 2 and 3, in slot order
  const entry = cache.entryToSend(slots[0])!;
  assertEquals(entry[19], 2, "session 2");
  assertEquals(expirationOf(entry, 0, "C"), 59_002 - 30_000, "a replayed entry carries the time left");
  now = 59_002;
  assertEquals(cache.sweep(), 2, "sessions 1 and 2 expired");
  assertEquals(cache.size, 1);
  assertEquals(cache.digest(0xb), { count: 0, hash: 0 });
  assertEquals([...cache.snapshot(0)].map(([origin, keys]) => [origin, keys.length]), [[0xa, 1]]);
  assertEquals(cache.snapshot(0xa).size, 0, "a replay to a peer skips what it sent itself");
});

Deno.test("session cache: the index finds every session after growth, expiry and slot reuse", () => {
  let now = 0;
  const cache = new SessionCache("C", 5000, () => now);
  // 3 000 sessions (src6 ::n, n < 65 536): half expire at 10 s, half at 59 s.
  const entry = (n: number, expiration: number) => encodeEntry({ ...sessionOf(n), expiration }, "C");
  for (let n = 0; n < 3000; n++) cache.put(entry(n, n % 2 ? 10_000 : 59_000), 1);
  assertEquals([cache.size, cache.counters.added], [3000, 3000]);
  now = 10_000;
  assertEquals(cache.sweep(), 1500);
  // The survivors are all still found (updated, not added); the expired come back in reused slots.
  for (let n = 0; n < 3000; n++) cache.put(entry(n, 59_000), 2);
  assertEquals([cache.size, cache.counters.added, cache.counters.updated], [3000, 4500, 1500]);
  assertEquals(cache.digest(1).count, 0);
  assertEquals(cache.digest(2).count, 3000);
  for (let n = 3000; n < 6000; n++) cache.put(entry(n, 59_000), 2);
  assertEquals([cache.size, cache.counters.full], [5000, 1000], "bounded");
});

Deno.test("in sync: replay complete, nothing missing, heard lately; lost → out until the next replay", () => {
  const peer = new Peer(7, 0, TIMING);
  const inSync = (now: number) => peer.inSync(now, 2500);
  assertEquals(inSync(0), false, "no replay yet");
  assertEquals(peer.needsRequest(0, 2000), true);
  peer.sequence.accept(1, 0);
  peer.requested(0);
  assertEquals(peer.needsRequest(1000, 2000), false, "asked, waiting");
  assertEquals(peer.replayEnded(1), false, "a replay begun before the request answers an earlier one");
  peer.sequence.accept(2, 10);
  assertEquals(peer.replayEnded(2), true);
  assertEquals(inSync(20), true);
  assertEquals(inSync(2600), false, "unheard for longer than the stale time");
  peer.sequence.accept(4, 30); // 3 missing
  assertEquals(inSync(40), false, "a gap open");
  peer.sequence.accept(3, 50);
  assertEquals(inSync(60), true, "the gap filled");
  peer.lost(1);
  assertEquals(inSync(70), false);
  assertEquals(peer.needsRequest(70, 2000), true, "lost: ask again");
  peer.requested(70); // it had reached 4
  peer.sequence.accept(5, 80);
  peer.sequence.accept(6, 80);
  assertEquals(peer.replayEnded(4), false, "snapshotted before the loss: does not repair it");
  assertEquals(peer.replayEnded(5), true);
  assertEquals(inSync(90), true);
  assertEquals(peer.replaysCompleted, 2);

  assertEquals(allInSync([peer], false, 90, 2500), false, "within the start-up grace");
  assertEquals(allInSync([peer], true, 90, 2500), true);
  assertEquals(allInSync([], true, 90, 2500), true, "alone: no live peer to lag behind");
  assertEquals([trackValue(true, -50), trackValue(false, -50)], [0, -50]);
});
