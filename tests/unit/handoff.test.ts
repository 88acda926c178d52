/** The hand-off ring between the kernel thread and the main thread (lib/kernel/handoff.ts), on one thread. */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHandoff,
  HANDOFF_SLOT_BYTES,
  HANDOFF_SLOTS,
  HandoffReader,
  HandoffWriter,
} from "../../lib/kernel/handoff.ts";

for (const slots of [HANDOFF_SLOTS, 4]) {
  Deno.test(`hand-off of ${slots} slots: in order with their ACK flag, as fresh copies; a full ring says so`, () => {
    checkRing(slots);
  });
}

Deno.test("hand-off: the slot count must be a power of two", () => {
  for (const bad of [0, 3, 100]) {
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
    for (let i = 0; i < slots; i++) {
      const slot = writer.next();
      assert(slot !== undefined, `slot ${i} of round ${round}`);
      slot.set([round, i >> 8, i & 0xff]);
      writer.publish(3, i % 2 === 0);
    }
    assertEquals(writer.next(), undefined, "full: the thread must wait");
    for (let i = 0; i < slots; i++) {
      const d = reader.take()!;
      assertEquals([...d.bytes], [round, i >> 8, i & 0xff]);
      assertEquals(d.acked, i % 2 === 0);
      assert(!(d.bytes.buffer instanceof SharedArrayBuffer), "a copy the receiver may keep");
    }
    assertEquals(reader.take(), undefined);
  }
}

Deno.test("hand-off: a datagram longer than a slot comes out cut to the slot", () => {
  const memory = createHandoff();
  const writer = new HandoffWriter(memory);
  const reader = new HandoffReader(memory);
  writer.next()!.fill(9);
  writer.publish(HANDOFF_SLOT_BYTES + 100, false);
  assertEquals(reader.take()!.bytes.length, HANDOFF_SLOT_BYTES);
});

/**
 * Runs `body` with a timer pending: a wait of `Atomics.waitAsync` does not keep Deno's event loop alive by itself
 * (in the daemon, the kernel thread's Worker does).
 */
async function keptAlive(body: () => Promise<void>): Promise<void> {
  const timer = setTimeout(() => {}, 60_000);
  try {
    await body();
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("hand-off: the reader is woken only when it said it waits, and a publish in between is never missed", () =>
  keptAlive(async () => {
    const memory = createHandoff();
    const writer = new HandoffWriter(memory);
    const reader = new HandoffReader(memory);
    writer.next();
    writer.publish(1, false);
    assertEquals(writer.wakeReader(), false, "nobody waits: no wake");
    assertEquals(reader.waitForDatagrams(), undefined, "a datagram waits: take it instead of waiting");
    reader.take();
    const waiting = reader.waitForDatagrams();
    assert(waiting !== undefined, "nothing waits: wait");
    let woken = false;
    waiting.then(() => woken = true);
    await Promise.resolve();
    assert(!woken, "not before a publish");
    writer.next();
    writer.publish(1, false);
    assertEquals(writer.wakeReader(), true, "the reader waits: wake it");
    assertEquals(await waiting, "ok", "woken by the writer's notify");
    assertEquals(writer.wakeReader(), false, "once");
  }));

Deno.test("hand-off: a wait ends on interrupt (stop, failure) with nothing published", () =>
  keptAlive(async () => {
    const memory = createHandoff();
    const reader = new HandoffReader(memory);
    const waiting = reader.waitForDatagrams();
    assert(waiting !== undefined);
    reader.interrupt();
    assertEquals(await waiting, "ok");
    assertEquals(reader.take(), undefined);
  }));

Deno.test("hand-off: the writer's rehearsal wakes nobody and leaves the flag clear", () =>
  keptAlive(async () => {
    const memory = createHandoff();
    const writer = new HandoffWriter(memory);
    const reader = new HandoffReader(memory);
    writer.rehearseWake();
    assertEquals(writer.wakeReader(), false, "flag left clear");
    const waiting = reader.waitForDatagrams()!;
    writer.next();
    writer.publish(1, false);
    assertEquals(writer.wakeReader(), true);
    assertEquals(await waiting, "ok");
  }));
