/** The hand-off ring between the kernel thread and the main thread (lib/kernel/handoff.ts), on one thread. */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHandoff,
  HANDOFF_DATAGRAM_BYTES,
  HANDOFF_SLOT_BYTES,
  HANDOFF_SLOTS,
  HandoffReader,
  HandoffWriter,
} from "../../lib/kernel/handoff.ts";

for (const slots of [HANDOFF_SLOTS, 4]) {
  Deno.test(`hand-off of ${slots} slots: in order with their ACK flag, as copies; a full ring says so`, () => {
    checkRing(slots);
  });
}

Deno.test("hand-off: the slot count must be a power of two, at least 2", () => {
  for (const bad of [0, 1, 3, 100]) {
    let thrown = false;
    try {
      createHandoff(bad);
    } catch (error) {
      thrown = error instanceof RangeError;
    }
    assert(thrown, `${bad} slots refused`);
  }
});

function checkRing(slots: number): void {
  const memory = createHandoff(slots);
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  assertEquals(reader.take(), undefined);
  for (let round = 0; round < 3; round++) { // wraps the ring around
    for (let i = 0; i < slots - 1; i++) { // one slot stays free: the next datagram may need two
      const slot = writer.next();
      assert(slot !== undefined, `slot ${i} of round ${round}`);
      slot.set([round, i >> 8, i & 0xff]);
      writer.publish(3, i % 2 === 0);
    }
    assertEquals(writer.next(), undefined, "full: the thread must wait");
    for (let i = 0; i < slots - 1; i++) {
      const d = reader.take()!;
      assertEquals([...d.bytes], [round, i >> 8, i & 0xff]);
      assertEquals(d.acked, i % 2 === 0);
      assert(!(d.bytes.buffer instanceof SharedArrayBuffer), "a copy: the slot is free at once");
    }
    assertEquals(reader.take(), undefined);
  }
}

Deno.test("hand-off: take() copies into one buffer it reuses (no backing store per datagram), and frees the slot", () => {
  const memory = createHandoff(2); // two slots: the thread's next datagram goes where the last one was
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  const buffers = new Set<ArrayBufferLike>();
  for (let i = 0; i < 10; i++) {
    writer.next()!.set([i, i]);
    writer.publish(2, false);
    const d = reader.take()!;
    assertEquals([...d.bytes], [i, i]);
    buffers.add(d.bytes.buffer);
    writer.next()!.fill(0xee); // the slot is free at once: the thread refills it, the copy stays as it was
    writer.publish(1, false);
    assertEquals([...d.bytes], [i, i]);
    reader.take();
  }
  assertEquals(buffers.size, 1);
});

Deno.test("hand-off: a datagram longer than a slot takes two and comes out whole, at every place in the ring", () => {
  const slots = 8;
  const memory = createHandoff(slots);
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  // Lengths that put a long datagram at every slot, the last one included (its second half past the ring's end).
  const lengths = [3000, 100, HANDOFF_DATAGRAM_BYTES, 1, HANDOFF_SLOT_BYTES, HANDOFF_SLOT_BYTES + 1, 7];
  const taken: { bytes: Uint8Array; acked: boolean }[] = [];
  for (let i = 0; i < 40; i++) {
    const length = lengths[i % lengths.length];
    const pattern = (at: number) => (i * 31 + at) & 0xff;
    const slot = writer.next();
    assert(slot !== undefined, `room for datagram ${i}`);
    assert(slot.length >= HANDOFF_DATAGRAM_BYTES, "room for a datagram of two slots");
    for (let at = 0; at < length; at++) slot[at] = pattern(at);
    writer.publish(length, i % 3 === 0);
    // Take every other datagram late, so that two wait at times, some of them two slots long.
    if (i % 2 === 1 || i === 39) {
      for (let d = reader.take(); d; d = reader.take()) {
        taken.push({ bytes: d.bytes.slice(), acked: d.acked });
      }
    }
  }
  assertEquals(taken.length, 40);
  taken.forEach((d, i) => {
    const length = lengths[i % lengths.length];
    assertEquals(d.bytes.length, length, `datagram ${i} whole`);
    assert(d.bytes.every((b, at) => b === ((i * 31 + at) & 0xff)), `datagram ${i}'s bytes`);
    assertEquals(d.acked, i % 3 === 0);
  });
});

Deno.test("hand-off: a long datagram needs two free slots; a longer one than two slots comes out cut to them", () => {
  const memory = createHandoff(4);
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  writer.next();
  writer.publish(HANDOFF_SLOT_BYTES + 1, false); // two slots
  assert(writer.next() !== undefined, "two free");
  writer.publish(1, false);
  assertEquals(writer.next(), undefined, "one free: a long datagram would not fit");
  assertEquals(reader.take()!.bytes.length, HANDOFF_SLOT_BYTES + 1);
  assert(writer.next() !== undefined, "three free");
  writer.publish(HANDOFF_DATAGRAM_BYTES + 100, false);
  assertEquals(reader.take()!.bytes.length, 1);
  assertEquals(reader.take()!.bytes.length, HANDOFF_DATAGRAM_BYTES, "cut to two slots");
  assertEquals(reader.take(), undefined);
});

Deno.test("hand-off: word is sent only when the reader said it waits, and a publish in between is never missed", () => {
  const memory = createHandoff();
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  writer.next();
  writer.publish(1, false);
  assertEquals(writer.takeWaiter(), false, "nobody waits: no word");
  assertEquals(reader.announceWait(), false, "a datagram waits: take it instead of waiting");
  reader.take();
  assertEquals(reader.announceWait(), true, "nothing waits: wait for word");
  writer.next();
  writer.publish(1, false);
  assertEquals(writer.takeWaiter(), true, "the reader waits: send word");
  assertEquals(writer.takeWaiter(), false, "once");
});

Deno.test("hand-off: a kernel thread waiting on a full ring is woken when the main thread frees a slot", async () => {
  const memory = createHandoff(4);
  const module = new URL("../../lib/kernel/handoff.ts", import.meta.url).href;
  const source = `
    import { HandoffWriter } from ${JSON.stringify(module)};
    self.onmessage = (event) => {
      const writer = new HandoffWriter(event.data);
      while (writer.next()) writer.publish(1, false);
      self.postMessage("full");
      const start = performance.now();
      writer.waitForRoom(20_000); // woken by the reader's take(), else only after 20 s
      const woken = performance.now() - start < 10_000;
      self.postMessage(writer.next() === undefined ? "still full" : woken ? "room" : "room after the timeout");
    };`;
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const replies: string[] = [];
    const next = () => new Promise<string>((resolve) => worker.onmessage = (e) => resolve(e.data));
    worker.postMessage(memory);
    replies.push(await next());
    const reader = new HandoffReader(memory);
    const woken = next();
    await new Promise((resolve) => setTimeout(resolve, 50)); // let it block in Atomics.wait
    assert(reader.take() !== undefined);
    replies.push(await woken);
    assertEquals(replies, ["full", "room"]);
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});
