/**
 * Reads a kernel double's stdout (frames: u32 BE length + netlink message) from a FIFO in big reads, so the
 * daemon never waits on its reader: counts JOOLD_ADDs and their sessions, checks each container byte for byte
 * against the benchmark's batch (all but the sequence number), entry by entry in the batch's order — a framed
 * wire may cut a batch, and a frame may end one batch and start the next (`lib/relay.ts`) — and timestamps the
 * sampled sequence numbers (carried by each batch's first entry).
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
  void length;
  const payload = buffer.subarray(at + ADD_PAYLOAD_OFFSET, at + 48 + view.getUint16(at + 48, true));
  const count = payload.length / ENTRY;
  if (count === 0 || !Number.isInteger(count)) {
    mismatched++;
    return;
  }
  // Entries follow the batch's order, wrapping from its last entry to the first of the next batch (a frame
  // may end one batch and start the next, lib/relay.ts). Where the payload starts: the entry equal to its
  // first one (the batch's entries all differ; datagrams lost before it make any start possible).
  let index = 0;
  while (index < batchEntries && !sameEntry(payload, 0, index)) index++;
  if (index === batchEntries) {
    mismatched++;
    return;
  }
  for (let k = 1; k < count; k++) {
    if (!sameEntry(payload, k * ENTRY, (index + k) % batchEntries)) {
      mismatched++;
      return;
    }
  }
  sessions += count;
  // Batch starts in this payload: each carries its sequence number in its first entry.
  for (let k = (batchEntries - index) % batchEntries; k < count; k += batchEntries) {
    const seq = new DataView(payload.buffer, payload.byteOffset).getUint32(k * ENTRY + SEQ_OFFSET, false);
    if (seq % sampleEvery === 0) arrivals.push([seq, performance.timeOrigin + performance.now()]);
  }
}

/** Entries in the benchmark's batch. */
const batchEntries = expected.length / ENTRY;

/** Whether the entry at `at` of `payload` is the batch's entry `index` (its sequence number's bytes aside). */
function sameEntry(payload: Uint8Array, at: number, index: number): boolean {
  const from = index * ENTRY;
  for (let i = 0; i < ENTRY; i++) {
    const j = from + i;
    if (payload[at + i] !== expected[j] && (j < SEQ_OFFSET || j >= SEQ_OFFSET + 4)) return false;
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
