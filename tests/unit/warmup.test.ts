import { assertEquals } from "../helpers/assert.ts";
import { warmUp } from "../../lib/warmup.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";

Deno.test("warm-up drives every batch through the real channel and relay, both ways, for every format", async () => {
  // Per round one ACK, one datagram out and one JOOLD_ADD in: a break anywhere on the path shows as fewer.
  for (const format of ["A", "B", "C"] as const) {
    const log = new MemoryLogger();
    const result = await warmUp({ instance: "Nat64-b", format, rounds: 40, loopbackRounds: 3, log });
    assertEquals(
      [result.acks, result.datagrams, result.adds, result.loopbackDatagrams],
      [40, 40, 40, 3],
      `format ${format}: ${log.lines.join(" | ")}`,
    );
  }
});

Deno.test("warm-up crosses the relay's back-pressure watermark and still completes every round", async () => {
  // 1500 batches arrive faster than the (timer-woken) sender drains them: the queue of 1024 passes 3/4 and the
  // channel must hold, then resume — the held path is part of what gets compiled.
  const result = await warmUp({
    instance: "default",
    rounds: 1500,
    loopbackRounds: 0,
    log: new MemoryLogger(),
  });
  assertEquals([result.acks, result.datagrams, result.adds, result.loopbackDatagrams], [1500, 1500, 1500, 0]);
});
