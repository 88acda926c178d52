/**
 * The daemon's entry point for tests and benchmarks: main.ts's program with the kernel double
 * (`tests/helpers/kernel_double.ts`) instead of Jool. `--kernel-double=VERSION` (required, e.g. 4.1.13) names
 * the Jool version the double plays; every other argument is joold's own. Not part of the shipped program.
 * @module
 */
import { main } from "../../main.ts";
import { doubleKernel } from "./kernel_double.ts";

const FLAG = "--kernel-double=";

if (import.meta.main) {
  const flag = Deno.args.find((arg) => arg.startsWith(FLAG));
  const version = flag?.slice(FLAG.length) ?? "";
  if (!/^\d+\.\d+\.\d+(\.\d+)?$/.test(version)) {
    console.error(
      `joold_double: ${FLAG}VERSION is required (e.g. ${FLAG}4.1.13), got ${JSON.stringify(flag)}`,
    );
    Deno.exit(2);
  }
  await main(Deno.args.filter((arg) => arg !== flag), doubleKernel(version));
  Deno.exit(0);
}
