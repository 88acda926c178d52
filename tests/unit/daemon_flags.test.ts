/**
 * joold's run flags (permissions and V8 heap flags) are defined once, in tests/helpers/daemon_process.ts;
 * the places that cannot import it (deno.json tasks, README, the systemd unit, the VM lab's guest script) must
 * carry the same flags.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, PERMISSION_FLAGS, ROOT, V8_FLAGS } from "../helpers/daemon_process.ts";

const read = (path: string) => Deno.readTextFileSync(`${ROOT}${path}`);

/** The words of a task's command line up to the entry point `main.ts`. */
function flagsOf(command: string): string[] {
  const words = command.split(/\s+/);
  return words.slice(0, words.indexOf("main.ts")).filter((w) => w.startsWith("--"));
}

Deno.test("daemon flags: `deno task start` and `deno task compile` run with DAEMON_FLAGS", () => {
  const tasks = JSON.parse(read("deno.json")).tasks as Record<string, string>;
  assertEquals(flagsOf(tasks.start), DAEMON_FLAGS, "deno.json tasks.start");
  const compile = flagsOf(tasks.compile).filter((f) => !["--exclude", "--include", "--output"].includes(f));
  assertEquals(compile, DAEMON_FLAGS, "deno.json tasks.compile (deno compile embeds them)");
});

Deno.test("daemon flags: `deno task compile` carries the kernel thread's own module", () => {
  // The Worker runs lib/kernel/thread_main.ts (lib/kernel/thread_module.ts); deno compile embeds only what
  // main.ts imports statically, so the executable needs it named.
  const tasks = JSON.parse(read("deno.json")).tasks as Record<string, string>;
  assert(tasks.compile.includes("--include lib/kernel/thread_main.ts"), "deno.json tasks.compile: --include");
});

Deno.test("daemon flags: the README and the systemd unit show the same flags", () => {
  const readme = read("README.md");
  assert(readme.includes(`\`deno run ${DAEMON_FLAGS.join(" ")} dist/joold.js …\``), "README: the bundle");
  assert(readme.includes(`\`${PERMISSION_FLAGS.join(" ")}\``), "README: the permissions");
  assert(readme.includes(`\`${V8_FLAGS}\``), "README: the V8 flags");
  assert(read("scripts/systemd/joold@.service").includes(V8_FLAGS), "joold@.service: the V8 flags");
});

Deno.test("daemon flags: the VM lab runs our daemon with DAEMON_FLAGS", () => {
  const lib = read("scripts/lab/guest/lib.sh");
  assert(lib.includes(`DAEMON_FLAGS="${DAEMON_FLAGS.join(" ")}"`), "scripts/lab/guest/lib.sh: DAEMON_FLAGS");
  // The entry is main.ts unless the lab runs the one-file bundle (`--bundle`); the flags are the same for both.
  assert(lib.includes("DAEMON_ENTRY=${DAEMON_ENTRY:-main.ts}"), "scripts/lab/guest/lib.sh: DAEMON_ENTRY");
  assert(
    lib.includes('"$DENO" run $DAEMON_FLAGS "$DAEMON_PROJ/$DAEMON_ENTRY"'),
    "scripts/lab/guest/lib.sh: the daemon line",
  );
});
