/**
 * Property-based fuzzing of every decoder and validator of outside input (tests/fuzz/targets.ts), a bounded
 * number of runs per target from a fixed seed. A failure prints the target, the seed and fast-check's
 * counterexample with the path to replay it; `deno task fuzz` runs the same targets ≥ 1 000 000 times each.
 */
import { runTarget, TARGETS } from "../fuzz/targets.ts";

/** Fixed so that CI is reproducible; `deno task fuzz` picks a fresh one per run and prints it. */
const SEED = 0x10_0d_14;

for (const target of TARGETS) {
  Deno.test(`fuzz: ${target.name} (${target.unitRuns} runs, seed ${SEED})`, async () => {
    const result = await runTarget(target, target.unitRuns, SEED);
    if (result.failure) throw new Error(result.failure);
    // Inputs must reach the accepting branch too, or the target proves nothing.
    if (result.accepted === 0) {
      throw new Error(`${target.name}: no generated input was accepted (seed ${SEED})`);
    }
  });
}
