/**
 * `deno task lab`: builds the VM lab (cached), boots a guest with the real Jool module, runs a session-sync
 * daemon on routers A and B, sends traffic through A and shows whether B mirrors A's session table.
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  bootLab,
  buildLab,
  JOOL_VERSIONS,
  LabError,
  type LabImage,
  type LabJoolVersion,
  labUnavailableReason,
  OUT_DIR,
  PROJECT_DIR,
  snapshotDaemonTree,
} from "./lab.ts";
import { mirrors, readCases, readSnapshot, sideBySide, type Snapshot } from "./results.ts";

const USAGE = `usage: deno task lab [options]

Builds a QEMU guest (cached in .lab-cache/) with the real Jool kernel module, starts a session-sync daemon on
routers A and B, sends ping, a long-lived TCP echo and UDP flows through A to 64:ff9b::192.0.2.10, prints both
session tables side by side plus the daemons' stats, and exits 0 when B mirrors A. Needs root.

options:
  --jool 4.1.9|4.1.13        Jool version (default 4.1.13)
  --family 6|4               sync group: ff08::db8:64:64 (6, default) or 233.252.0.64 (4)
  --daemon-a ours|upstream   daemon on router A (default ours)
  --daemon-b ours|upstream   daemon on router B (default ours)
  --timeout SECONDS          QEMU time limit (default 300; 1500 with --burst)
  --burst                    instead: bursts of new UDP flows through A, ours vs upstream on both routers;
                             prints a Markdown table of the sessions that never reached B (stdout)
  --burst-sizes N,N          flows per burst (default 40,200)
  --repeat N                 runs per daemon and size (default 3)
  --steady-seconds N         with --burst: before each burst, N seconds of steady sync (ten new flows a
                             second); the output directory gets "-steadyN" as a suffix
  --daemon-rev REV           run our daemon as of git revision REV (a snapshot of main.ts, lib/, ffi/ in the
                             output directory) instead of the working tree; the output directory gets
                             the commit's short id as a suffix
  --b-netlink                with --burst: also capture B's netlink (its JOOLD_ADDs), for the time from A's
                             first multicast of a burst to B's last JOOLD_ADD (precise, where the session-table
                             polling is to the second)
  --sched-trace              with --burst: record the guest's scheduler and softirq events during each burst
                             (tracefs) in the case's sched.trace
  --bundle                   run our daemon from the one-file bundle (deno task bundle → dist/joold.js)
  --help                     this text
Output (logs, tables, stats) goes to .lab-out/demo-VERSION/.`;

function die(message: string): never {
  console.error(`lab: ${message}`);
  Deno.exit(2);
}

function statsLine(label: string, s: Snapshot): string {
  if (s.statsJson) {
    const c = s.statsJson.counters;
    const picked = Object.entries(c).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
    const drops = Object.entries(s.statsJson.drops).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
    return `${label}: ${picked.join(" ") || "all counters 0"}${
      drops.length ? ` drops: ${drops.join(" ")}` : ""
    }`;
  }
  if (s.statsText) {
    return `${label}: ${Object.entries(s.statsText).map(([k, v]) => `${k}=${v}`).join(" ")}`;
  }
  return `${label}: no stats (the daemon has no stats port, or did not answer)`;
}

/** `--burst`: one boot, `repeat` bursts per daemon kind and size; a Markdown table on stdout. */
async function burst(
  image: LabImage,
  sizes: number[],
  repeat: number,
  timeout: number,
  rev: string | undefined,
  steady: number,
  schedTrace: boolean,
  bNetlink: boolean,
): Promise<number> {
  const specs: string[] = [];
  for (const n of sizes) {
    for (let r = 1; r <= repeat; r++) {
      for (const d of ["ours", "upstream"]) specs.push(`burst:burst-${d}-${n}-${r}:${d}:${n}`);
    }
  }
  const env: Record<string, string> = {
    LAB_CASES: specs.join(" "),
    LAB_STEADY_SECONDS: String(steady),
    LAB_SCHED_TRACE: schedTrace ? "1" : "0",
    LAB_NLMON_B: bNetlink ? "1" : "0",
  };
  let outDir = join(OUT_DIR, `burst-${image.version}${steady > 0 ? `-steady${steady}` : ""}`);
  let prepare: ((dir: string) => Promise<void>) | undefined;
  if (rev !== undefined) {
    const commit = (await snapshotDaemonTree(rev, join(OUT_DIR, ".rev-probe"))).slice(0, 12);
    Deno.removeSync(join(OUT_DIR, ".rev-probe"), { recursive: true });
    outDir = `${outDir}-${commit}`;
    env.DAEMON_PROJ = "/mnt/out/tree";
    env.DAEMON_COMMIT = commit;
    prepare = async (dir) => {
      await snapshotDaemonTree(commit, join(dir, "tree"));
      Deno.writeTextFileSync(join(dir, "daemon-commit"), `${commit}\n`);
    };
  }
  const boot = await bootLab(image, "suite", env, outDir, timeout, prepare);
  const cases = readCases(outDir);
  const rows = [
    `Jool ${image.version}, VM lab (QEMU TCG, 2 vCPUs), daemons of the same kind on A and B, IPv6 group.`,
    "Sessions created through A that never reached B (per run), and seconds until B held all of them.",
    "",
    "| flows per burst | daemon | lost per run | runs with loss | seconds to mirror |",
    "|---|---|---|---|---|",
  ];
  for (const n of sizes) {
    for (const d of ["ours", "upstream"]) {
      const runs = Array.from({ length: repeat }, (_, i) => cases.get(`burst-${d}-${n}-${i + 1}`)?.facts);
      const lost = runs.map((f) => (f && f.ready_b === "yes" ? f.missing ?? "?" : "n/a"));
      const waited = runs.map((f) => (f?.a_to_b === "yes" ? f.waited : "—"));
      const withLoss = lost.filter((l) => l !== "0").length;
      const label = d === "ours" ? "ours (Deno)" : `upstream C joold ${image.version}`;
      rows.push(`| ${n} | ${label} | ${lost.join(", ")} | ${withLoss}/${repeat} | ${waited.join(", ")} |`);
    }
  }
  rows.push("", `Guest time ${boot.seconds.toFixed(0)} s; details in ${outDir}/cases/.`);
  console.log(rows.join("\n"));
  return boot.scenarioStatus === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        jool: { type: "string", default: "4.1.13" },
        family: { type: "string", default: "6" },
        "daemon-a": { type: "string", default: "ours" },
        "daemon-b": { type: "string", default: "ours" },
        timeout: { type: "string" },
        burst: { type: "boolean", default: false },
        "burst-sizes": { type: "string", default: "40,200" },
        repeat: { type: "string", default: "3" },
        "steady-seconds": { type: "string", default: "0" },
        "daemon-rev": { type: "string" },
        bundle: { type: "boolean", default: false },
        "sched-trace": { type: "boolean", default: false },
        "b-netlink": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    die(`${errorMessage(error)}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const version = values.jool as LabJoolVersion;
  if (!JOOL_VERSIONS.includes(version)) die(`--jool ${values.jool}: use one of ${JOOL_VERSIONS.join(", ")}`);
  if (values.family !== "6" && values.family !== "4") die(`--family ${values.family}: use 6 or 4`);
  for (const k of ["daemon-a", "daemon-b"] as const) {
    if (values[k] !== "ours" && values[k] !== "upstream") die(`--${k} ${values[k]}: use ours or upstream`);
  }
  const timeout = Number(values.timeout ?? (values.burst ? "1500" : "300"));
  if (!Number.isInteger(timeout) || timeout < 30) die(`--timeout ${values.timeout}: use whole seconds ≥ 30`);
  const sizes = values["burst-sizes"].split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 5000)) {
    die(`--burst-sizes ${values["burst-sizes"]}: use comma-separated flow counts 1..5000`);
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) die(`--repeat ${values.repeat}: use 1..20`);
  const steady = Number(values["steady-seconds"]);
  if (!Number.isInteger(steady) || steady < 0 || steady > 120) {
    die(`--steady-seconds ${values["steady-seconds"]}: use 0..120`);
  }
  const why = labUnavailableReason();
  if (why) die(`cannot run the lab here: ${why}`);

  const image = await buildLab(version);
  if (values.burst) {
    return await burst(
      image,
      sizes,
      repeat,
      timeout,
      values["daemon-rev"],
      steady,
      values["sched-trace"],
      values["b-netlink"],
    );
  }
  const outDir = join(OUT_DIR, `demo-${version}`);
  const spec = `sync:demo:${values["daemon-a"]}:${values["daemon-b"]}:${values.family}`;
  const env: Record<string, string> = { LAB_CASES: spec };
  if (values.bundle) {
    const built = await new Deno.Command("bash", {
      args: [join(PROJECT_DIR, "scripts", "deno.sh"), "task", "bundle"],
      cwd: PROJECT_DIR,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!built.success) die("deno task bundle failed");
    env.DAEMON_ENTRY = "dist/joold.js";
  }
  const boot = await bootLab(image, "suite", env, outDir, timeout);
  const demo = readCases(outDir).get("demo");
  if (!demo) {
    console.error(`lab: the guest wrote no results (timed out: ${boot.timedOut}); see ${outDir}/guest.log`);
    return 1;
  }
  const a = readSnapshot(join(demo.dir, "through-a"), "A");
  const b = readSnapshot(join(demo.dir, "through-a"), "B");
  console.log(
    `\nJool ${version}, IPv${values.family} group; A: ${values["daemon-a"]}, B: ${values["daemon-b"]}` +
      (values.bundle ? " (ours from the bundle dist/joold.js)" : ""),
  );
  console.log(`\nSessions after traffic through A:\n${sideBySide(a, b)}\n`);
  const end = join(demo.dir, "through-b");
  console.log(statsLine("daemon A stats", readSnapshot(end, "A")));
  console.log(statsLine("daemon B stats", readSnapshot(end, "B")));
  const f = demo.facts;
  console.log(`daemons answered: A ${f.ready_a}, B ${f.ready_b}`);
  console.log(`failover (TCP connection opened through A echoes through B): ${f.failover_echo}`);
  console.log(`reverse (sessions through B reach A): ${f.b_to_a}`);
  const verdict = mirrors(a, b);
  console.log(`B mirrors A: ${verdict.ok ? "yes" : `NO (${verdict.reason})`}`);
  console.log(`details: ${outDir} (guest.log, cases/demo/*.log); guest ran ${boot.seconds.toFixed(0)}s`);
  return verdict.ok ? 0 : 1;
}

try {
  Deno.exit(await main());
} catch (error) {
  if (error instanceof LabError) die(error.message);
  throw error;
}
