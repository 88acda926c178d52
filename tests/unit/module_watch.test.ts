/** The Jool module watch (lib/kernel/module_watch.ts): an unload or a reload is noticed; nothing else is. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { moduleChange, watchModules } from "../../lib/kernel/module_watch.ts";

const COMMON = "/sys/module/jool_common", NAT64 = "/sys/module/jool";

Deno.test("module watch: unchanged inodes are no change; a missing or renumbered path is one", () => {
  const before = new Map([[COMMON, 10n], [NAT64, 11n]]);
  assertEquals(moduleChange(before, (p) => before.get(p)), undefined);
  assert(
    /jool_common is gone \(the module was unloaded\)/.test(
      moduleChange(before, (p) => p === COMMON ? undefined : 11n)!,
    ),
  );
  assert(/\/sys\/module\/jool is a new one/.test(moduleChange(before, (p) => p === NAT64 ? 99n : 10n)!));
  // stat(2) unavailable (old glibc): no verdict rather than a false one.
  assertEquals(moduleChange(before, () => null), undefined);
});

Deno.test("module watch: polls, reports the first change once, then stops", async () => {
  const inodes = new Map<string, bigint | undefined>([[COMMON, 10n], [NAT64, 11n]]);
  let reads = 0;
  const reasons: string[] = [];
  const watch = watchModules((p) => (reads++, inodes.get(p)), (why) => reasons.push(why), { intervalMs: 5 });
  assert(watch, "two present paths: a watch");
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(reasons.length, 0, reasons.join("; "));
  inodes.set(COMMON, undefined); // rmmod
  await new Promise((r) => setTimeout(r, 30));
  inodes.set(COMMON, 12n); // insmod: a new incarnation
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(reasons.length, 1, reasons.join("; "));
  assert(reasons.every((r) => r.includes("jool_common is gone")), reasons.join("; "));
  const after = reads;
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(reads, after, "no polling after the report");
  watch.stop();
});

Deno.test("module watch: nothing to watch when no path exists at start-up (Jool built in, or a test host)", () => {
  assertEquals(watchModules(() => undefined, () => {}, { intervalMs: 5 }), undefined);
  assertEquals(watchModules(() => null, () => {}, { intervalMs: 5 }), undefined);
});

Deno.test("module watch: a read that fails stops the watch and is reported, never thrown from the timer", async () => {
  let fail = false;
  const errors: unknown[] = [], gone: string[] = [];
  const watch = watchModules(
    () => {
      if (fail) throw new Error("EIO");
      return 7n;
    },
    (why) => gone.push(why),
    { intervalMs: 5, paths: [COMMON], onError: (e) => errors.push(e) },
  );
  assert(watch);
  fail = true;
  await new Promise((r) => setTimeout(r, 30));
  assertEquals([errors.length, gone.length], [1, 0]);
  watch.stop();
});
