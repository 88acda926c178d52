/** The pool4 watch (lib/kernel/pool4_watch.ts): first read, re-reads, failures kept and counted. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { Pool4Watch } from "../../lib/kernel/pool4_watch.ts";
import { inPool4 } from "../../lib/session/pool4_check.ts";
import { Stats } from "../../lib/stats.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";
import { parsePool4Spec, Pool4Double } from "../helpers/pool4_double.ts";

const HOUR = 3_600_000; // the timer never fires during a test: refresh() is called by hand

Deno.test("pool4 watch: reads at start, follows a change, keeps the last table when a re-read fails", async () => {
  const double = new Pool4Double(parsePool4Spec("tcp:192.0.2.1/32:1024-2047,icmp:192.0.2.1/32:0-65535"));
  const stats = new Stats();
  const log = new MemoryLogger();
  const watch = await Pool4Watch.start({ socket: double, instance: "default", stats, log, intervalMs: HOUR });
  try {
    assertEquals(log.lines, ["info: pool4 read: 2 entries (TCP 1, UDP 0, ICMP 1)"]);
    assertEquals(inPool4(watch.table, 0, 0xc0000201, 1500), true);

    double.table = parsePool4Spec("tcp:192.0.2.1/32:3000-3999");
    await watch.refresh();
    assertEquals(inPool4(watch.table, 0, 0xc0000201, 1500), false);
    assertEquals(inPool4(watch.table, 0, 0xc0000201, 3500), true);
    assertEquals(log.lines[1], "info: pool4 changed: 1 entries (TCP 1, UDP 0, ICMP 0)");

    await watch.refresh(); // unchanged: nothing logged
    assertEquals(log.lines.length, 2);

    double.failWith = 12;
    await watch.refresh();
    await watch.refresh();
    assertEquals(stats.get("POOL4_READ_ERRORS"), 2);
    assertEquals(inPool4(watch.table, 0, 0xc0000201, 3500), true, "the last table stays");
    assertEquals(log.lines.length, 3, "rate-limited: one line for two failures");
    assertEquals(
      log.lines[2],
      "warn: cannot read pool4 again (the last one read stays in use): the kernel refused POOL4_FOREACH with " +
        "errno 12 (failing on purpose)",
    );

    double.failWith = undefined;
    double.table = [];
    await watch.refresh();
    assert(log.lines[3].startsWith('warn: "check pool4" is on and the pool4 of instance "default" is empty'));
  } finally {
    watch.stop();
  }
  assertEquals(double.closed, true);
});

Deno.test("pool4 watch: a failed first read stops the start-up with one line and the right exit status", async () => {
  for (
    const [errno, exit] of [[1, EXIT.PERMISSION], [3, EXIT.INSTANCE_ABSENT], [22, EXIT.RUNTIME]] as const
  ) {
    const double = new Pool4Double([], { failWith: errno });
    const error = await Pool4Watch.start({
      socket: double,
      instance: "potato",
      stats: new Stats(),
      log: new MemoryLogger(),
      intervalMs: HOUR,
    }).then(() => undefined, (e) => e);
    assert(error instanceof JooldError);
    assertEquals(error.exitCode, exit);
    assertEquals(
      error.message,
      `"check pool4" is on but the pool4 of instance "potato" cannot be read: the kernel refused POOL4_FOREACH ` +
        `with errno ${errno} (failing on purpose); run joold with CAP_NET_ADMIN on a Jool 4.1 NAT64 instance, ` +
        `or set "check pool4": 0`,
    );
    assertEquals(double.closed, true);
  }
});

Deno.test("pool4 watch: an empty pool4 at start warns once", async () => {
  const log = new MemoryLogger();
  const watch = await Pool4Watch.start({
    socket: new Pool4Double([]),
    instance: "default",
    stats: new Stats(),
    log,
    intervalMs: HOUR,
  });
  watch.stop();
  assertEquals(log.lines.length, 1);
  assert(log.lines[0].includes("every session synced from the network is dropped"), log.lines[0]);
});
