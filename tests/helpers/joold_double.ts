/**
 * The daemon's entry point for tests and benchmarks: main.ts's program with the kernel double
 * (`tests/helpers/kernel_double.ts`) instead of Jool. `--kernel-double=VERSION` (required, e.g. 4.1.13) names
 * the Jool version the double plays; `--kernel-double-gone-after=MS` makes it report the Jool module gone (as
 * `lib/kernel/module_watch.ts` does) MS ms after start-up; `--kernel-double-pool4=SPEC` gives its pool4
 * (`parsePool4Spec` in `tests/helpers/pool4_double.ts`); `--kernel-double-threads` runs the double's pumps on
 * threads of their own (`tests/helpers/kernel_double_pump.ts`); every other argument is joold's own. Not part of the shipped program.
 * @module
 */
import { main } from "../../main.ts";
import { doubleKernel, THREAD_MODULE } from "./kernel_double.ts";
import { parsePool4Spec } from "./pool4_double.ts";

const FLAG = "--kernel-double=";
/** `--kernel-double-gone-after=MS`: the double reports its module gone MS ms after the daemon starts watching. */
const GONE_FLAG = "--kernel-double-gone-after=";
/** `--kernel-double-pool4=SPEC`: the double's pool4 table. */
const POOL4_FLAG = "--kernel-double-pool4=";
/** `--kernel-double-threads`: the double's pumps on threads of their own (`KernelDoubleOptions.threads`). */
const THREADS_FLAG = "--kernel-double-threads";

if (import.meta.main) {
  const flag = Deno.args.find((arg) => arg.startsWith(FLAG));
  const version = flag?.slice(FLAG.length) ?? "";
  if (!/^\d+\.\d+\.\d+(\.\d+)?$/.test(version)) {
    console.error(
      `joold_double: ${FLAG}VERSION is required (e.g. ${FLAG}4.1.13), got ${JSON.stringify(flag)}`,
    );
    Deno.exit(2);
  }
  const gone = Deno.args.find((arg) => arg.startsWith(GONE_FLAG));
  const pool4 = Deno.args.find((arg) => arg.startsWith(POOL4_FLAG));
  const threads = Deno.args.includes(THREADS_FLAG);
  const kernel = doubleKernel(
    version,
    THREAD_MODULE,
    pool4 ? parsePool4Spec(pool4.slice(POOL4_FLAG.length)) : [],
    threads,
  );
  if (gone) {
    const ms = Number(gone.slice(GONE_FLAG.length));
    kernel.watchGone = (onGone) => {
      const timer = setTimeout(() => onGone("the kernel double says so"), ms);
      return () => clearTimeout(timer);
    };
  }
  await main(
    Deno.args.filter((arg) => arg !== flag && arg !== gone && arg !== pool4 && arg !== THREADS_FLAG),
    kernel,
  );
  Deno.exit(0);
}
