/**
 * The reliable mode's live pacing: no limit until a peer NACKs a new loss, a cut to a share of what was sent,
 * one cut per loss episode, growth back, the lift, and the token bucket's waits.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  CUT_FACTOR,
  CUT_INTERVAL_MS,
  GROWTH_PER_TICK,
  LivePacer,
  MIN_RATE,
} from "../../lib/reliable/pacing.ts";

/** Sends `perMs` datagrams per ms from `from` to `to` (ms), ticking every 20 ms; returns the end time. */
function send(p: LivePacer, from: number, to: number, perMs: number): number {
  for (let t = from; t < to; t++) {
    for (let i = 0; i < perMs; i++) p.sent(t);
    if (t % 20 === 0) p.tick(t);
  }
  return to;
}

Deno.test("pacing: no limit and no wait before any NACK", () => {
  const p = new LivePacer();
  send(p, 0, 300, 10);
  assertEquals(p.rate, Infinity);
  assertEquals(p.delay(300), 0);
  assertEquals(p.counters.cuts, 0);
});

Deno.test("pacing: a new loss cuts to a share of the measured rate; a repeated NACK does not", () => {
  const p = new LivePacer();
  const t = send(p, 0, 300, 10); // 10 000 datagrams/s
  p.nacked(2000, 2010, t);
  assertEquals(p.counters.cuts, 1);
  assert(Math.abs(p.rate - 10_000 * CUT_FACTOR) < 200, `rate ${p.rate}`);
  const cut = p.rate;
  p.nacked(2000, 2010, t + CUT_INTERVAL_MS + 1); // the same gap NACKed again
  p.nacked(2005, 2020, t + CUT_INTERVAL_MS + 2); // overlaps what was NACKed: the same episode
  assertEquals(p.counters.cuts, 1);
  p.nacked(2100, 2101, t + 10); // a new loss, but within the cut interval
  assertEquals(p.counters.cuts, 1);
  assertEquals(p.rate, cut);
  p.nacked(2200, 2201, t + CUT_INTERVAL_MS + 3); // a new loss after it
  assertEquals(p.counters.cuts, 2);
  assert(p.rate < cut);
});

Deno.test("pacing: never below the floor", () => {
  const p = new LivePacer();
  send(p, 0, 200, 1); // 1 000 datagrams/s
  let seq = 0;
  for (let t = 200; t < 2000; t += CUT_INTERVAL_MS) p.nacked(++seq, seq, t);
  assertEquals(p.rate, MIN_RATE);
});

Deno.test("pacing: the bucket makes a live send wait, by the time one token takes", () => {
  const p = new LivePacer();
  const t = send(p, 0, 200, 10);
  p.nacked(1, 1, t);
  const rate = p.rate;
  // Spend the burst at once.
  let sent = 0;
  while (p.delay(t) === 0) {
    p.sent(t);
    sent++;
  }
  assert(sent <= 1 + rate * 0.02, `burst ${sent}`);
  const wait = p.delay(t);
  assertEquals(wait, Math.ceil(1000 / rate) || 1);
  assertEquals(p.delay(t + wait), 0);
  assert(p.counters.waits >= 1);
});

Deno.test("pacing: grows back without loss while it binds, lifted once it no longer does", () => {
  const p = new LivePacer();
  let t = send(p, 0, 200, 10);
  p.nacked(1, 1, t);
  const cut = p.rate;
  // Sending at the allowed rate: it binds, so it grows and is not lifted.
  for (let i = 0; i < 5; i++) {
    t += 20;
    for (let k = 0; k < p.rate / 50; k++) p.sent(t);
    p.tick(t);
  }
  assert(p.rate > cut && p.rate < Infinity, `rate ${p.rate}`);
  assert(p.rate <= cut * GROWTH_PER_TICK ** 5 + 1);
  // The load goes away: the limit no longer binds and is lifted.
  for (let i = 0; i < 200 && p.rate !== Infinity; i++) p.tick(t += 20);
  assertEquals(p.rate, Infinity);
  assertEquals(p.counters.lifts, 1);
  assertEquals(p.delay(t), 0);
});
