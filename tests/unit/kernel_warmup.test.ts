import { assertEquals } from "../helpers/assert.ts";
import { warmUpBatchPath } from "../../lib/kernel/warmup.ts";

Deno.test("warm-up runs the whole per-batch path on valid synthetic batches of every format", () => {
  // Per round: 10 sessions counted in the parsed multicast + 10 validated. A failure anywhere shows as fewer.
  for (const format of ["A", "B", "C"] as const) {
    assertEquals(warmUpBatchPath(format, undefined, 3), 60, format);
  }
});
