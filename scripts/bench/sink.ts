/**
 * Reads a kernel double's stdout (frames: u32 BE length + netlink message) from a FIFO in big reads, so the
 * daemon never waits on its reader: counts JOOLD_ADDs and their sessions, checks each container byte for byte
 * against the benchmark's batch (all but the sequence number) — or, when the sender split a batch into several
 * frames (`lib/relay.ts`), against the run of the batch's entries it starts at — and timestamps the sampled
 * sequence numbers (carried by a batch's first entry).
 * `deno run --allow-read sink.ts FIFO EXPECTED_HEX SAMPLE_EVERY`; prints `count N` lines while running and
 * one JSON line `{"adds","sessions","acks","others","mismatched","arrivals":[[seq,ms],…]}` at end of input.
 * Times are `performance.timeOrigin + performance.now()` (the same clock the driver uses).
 * @module
 */
import { ADD_PAYLOAD_OFFSET, JOOLD_ACK, JOOLD_ADD } from "./harness.ts";
import { SEQ_OFFSET } from "./fixtures.ts";

const [fifo, expectedHex, sampleText] = Deno.args;
const expected = Uint8Array.from(expectedHex.match(/../g)!.map((h) => parseInt(h, 16)));
const sampleEvery = Number(sampleText);
const file = await Deno.open(fifo, { read: true });
const buffer = new Uint8Array(1 << 20);
const view = new DataView(buffer.buffer);
let filled = 0;
/** Bytes of a format-C entry: the benchmark's batches are format C. */
const ENTRY = 40;
let adds = 0, sessions = 0, acks = 0, others = 0, mismatched = 0;
const arrivals: [number, number][] = [];
const encoder = new TextEncoder();
let lastReport = 0;

function check(at: number, length: number): void {
  const payload = buffer.subarray(at + ADD_PAYLOAD_OFFSET, at + 48 + view.getUint16(at + 48, true));
  if (payload.length === 0 || payload.length > expected.length || payload.length % ENTRY !== 0) {
    mismatched++;
    return;
  }
  // Where in the batch this payload starts: entry 0 (the whole batch, or its first frame), else the entry
  // equal to its first one (the batch's entries are all different).
  let from = 0;
  if (!sameAt(payload, 0)) {
    from = ENTRY;
    while (from + payload.length <= expected.length && !sameAt(payload, from)) from += ENTRY;
    if (from + payload.length > expected.length) {
      mismatched++;
      return;
    }
  }
  sessions += payload.length / ENTRY;
  if (from !== 0) return;
  void length;
  const seq = view.getUint32(at + ADD_PAYLOAD_OFFSET + SEQ_OFFSET, false);
  if (seq % sampleEvery === 0) arrivals.push([seq, performance.timeOrigin + performance.now()]);
}

/** Whether `payload` equals the expected batch's bytes from `from` on (the sequence number's bytes aside). */
function sameAt(payload: Uint8Array, from: number): boolean {
  for (let i = 0; i < payload.length; i++) {
    const j = from + i;
    if (payload[i] !== expected[j] && (j < SEQ_OFFSET || j >= SEQ_OFFSET + 4)) return false;
  }
  return true;
}

for (;;) {
  const n = await file.read(buffer.subarray(filled));
  if (n === null) break;
  filled += n;
  let at = 0;
  while (filled - at >= 4) {
    const length = view.getUint32(at, false);
    if (filled - at - 4 < length) break;
    const cmd = buffer[at + 4 + 16];
    if (cmd === JOOLD_ADD) {
      adds++;
      check(at + 4, length);
    } else if (cmd === JOOLD_ACK) acks++;
    else others++;
    at += 4 + length;
  }
  buffer.copyWithin(0, at, filled);
  filled -= at;
  const now = performance.now();
  if (now - lastReport > 100) {
    lastReport = now;
    Deno.stdout.writeSync(encoder.encode(`count ${adds}\n`));
  }
}
file.close();
console.log(`count ${adds}`);
console.log(JSON.stringify({ adds, sessions, acks, others, mismatched, arrivals }));
