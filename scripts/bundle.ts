/**
 * `deno task bundle`: `dist/joold.js`, the program in one JavaScript file, the kernel thread's own module inside
 * it. Bundles `lib/kernel/thread_main.ts` on its own, then `main.ts`, and writes the first into the second's
 * placeholder (`lib/kernel/thread_module.ts`), from where the daemon starts it as a Blob URL.
 *
 * `deno run --allow-read --allow-write --allow-run scripts/bundle.ts [OUTPUT]` (default `dist/joold.js`).
 * @module
 */
const ROOT = new URL("../", import.meta.url).pathname;
/** The placeholder as `deno bundle` prints it: a quoted string. */
const PLACEHOLDER = `"@@joold-kernel-thread-source@@"`;

async function bundle(entry: string, output: string): Promise<void> {
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "-o", output, `${ROOT}${entry}`],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!built.success) {
    console.error(`bundle: deno bundle ${entry} failed (status ${built.code})`);
    Deno.exit(1);
  }
}

const output = Deno.args[0] ?? `${ROOT}dist/joold.js`;
const threadFile = `${output}.kernel-thread.js`;
try {
  await bundle("lib/kernel/thread_main.ts", threadFile);
  await bundle("main.ts", output);
  const program = await Deno.readTextFile(output);
  const at = program.indexOf(PLACEHOLDER);
  if (at < 0 || program.indexOf(PLACEHOLDER, at + 1) >= 0) {
    console.error(
      `bundle: ${output}: expected the kernel thread's placeholder ${PLACEHOLDER} exactly once ` +
        "(lib/kernel/thread_module.ts); did deno bundle rewrite it?",
    );
    Deno.exit(1);
  }
  const thread = JSON.stringify(await Deno.readTextFile(threadFile));
  await Deno.writeTextFile(output, program.slice(0, at) + thread + program.slice(at + PLACEHOLDER.length));
} finally {
  await Deno.remove(threadFile).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}
