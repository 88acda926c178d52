/**
 * `deno task fuzz [--runs N] [--seed S] [--target NAME]`: runs every fuzz target of tests/fuzz/targets.ts
 * (default 1 000 000 runs each, a fresh seed per target unless --seed is given) and prints, per target, the
 * count, the time and the seed; a failure prints fast-check's counterexample and the seed to replay it, and the
 * exit status is 1. A benchmark, not a test: its figures go to BENCHMARKS.md ("Fuzzing").
 * @module
 */
import { parseArgs } from "node:util";
import { runTarget, TARGETS } from "../../tests/fuzz/targets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "1000000" },
    seed: { type: "string" },
    target: { type: "string", multiple: true },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`fuzz: --runs ${values.runs}: expected a positive integer`);
  Deno.exit(2);
}
const fixedSeed = values.seed === undefined ? undefined : Number(values.seed);
if (fixedSeed !== undefined && !Number.isInteger(fixedSeed)) {
  console.error(`fuzz: --seed ${values.seed}: expected an integer`);
  Deno.exit(2);
}
const wanted = values.target ?? [];
const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.name)) : TARGETS;
if (targets.length === 0) {
  console.error(
    `fuzz: no target named ${wanted.join(", ")}; the targets are ${TARGETS.map((t) => t.name).join(", ")}`,
  );
  Deno.exit(2);
}

console.log(
  `fuzz: ${targets.length} targets, ${runs} runs each (Deno ${Deno.version.deno}, ${Deno.build.target})`,
);
console.log("target                   runs        time     runs/s  accepted  seed         result");
let failed = 0;
const start = performance.now();
for (const target of targets) {
  const seed = fixedSeed ?? (Math.random() * 0x7fff_ffff) >>> 0;
  const r = await runTarget(target, runs, seed);
  console.log(
    [
      r.name.padEnd(24),
      String(r.runs).padStart(8),
      `${(r.ms / 1000).toFixed(1)} s`.padStart(10),
      String(Math.round(r.runs / (r.ms / 1000))).padStart(10),
      `${(100 * r.accepted / r.runs).toFixed(1)} %`.padStart(9),
      String(seed).padEnd(12),
      r.failure ? "FAILED" : "ok",
    ].join(" "),
  );
  if (r.failure) {
    failed++;
    console.log(r.failure);
  }
}
console.log(
  `fuzz: ${targets.length - failed} ok, ${failed} failed, ${
    ((performance.now() - start) / 1000).toFixed(1)
  } s in all`,
);
if (failed) Deno.exit(1);
