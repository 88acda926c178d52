/**
 * `deno task bench`: host benchmarks of joold-deno. Runs the codec micro-benchmarks (deno bench), the host
 * relay at saturation (real daemons in two namespaces with the kernel double), memory (idle, peak, soak) and
 * points at the VM lab burst; writes .lab-out/bench/bench-DATE.json and prints markdown tables.
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { parseArgs } from "node:util";
import {
  daemonEnvironment,
  daemonFlags,
  DENO,
  hostBenchSkipReason,
  hostBusySeconds,
  ROOT,
  setDaemonEnv,
  setDaemonV8Flags,
  setLinkMtu,
} from "./harness.ts";
import { type RelayResult, runRelay } from "./host_relay.ts";
import {
  idleRss,
  probeUpstream,
  type RssSample,
  soak,
  type SoakAccounting,
  type SoakResult,
  type UpstreamProbe,
} from "./memory.ts";
import { hotSpotTable, summariseFile } from "./profile.ts";

const USAGE = `usage: deno task bench [options]

  --only host|codec|memory|lab   run only these parts (repeatable or comma-separated; default: all)
  --sync-mode upstream|reliable  netsocket.json "mode" of the host relay's daemons (default upstream)
  --auth                         the host relay's daemons share a "key file" (every frame authenticated)
  --link-mtu N                   MTU of the daemons' veth link (default 1500)
  --batch-sessions N             sessions per kernel batch in the host relay (default 36: 1 440 bytes, a
                                 full 1 452-byte ss-max-payload's worth of format-C entries)
  --ingress                      the host relay's receiver (B) reads through "accept from" (recvmsg with
                                 packet info) instead of Deno's receive
  --double-threads               the host relay's kernel doubles pump on threads of their own, so that each
                                 daemon's own CPU (process minus those threads) is reported beside the process's
  --gc-trace                     the host relay's A runs with V8's --trace-gc (its stdout into
                                 .lab-out/bench/gc-trace-A-N.log); each run reports A's collections
  --quick                        short runs (1 repeat, 20 000 batches, 30 s soak)
  --repeat N                     host relay runs to take the median of (default 3)
  --batches N                    batches per host relay run (default 200 000; 30 s at most)
  --inject-rate N                host relay: inject at most N sessions/s into A (default: as fast as A takes
                                 them), to measure below the receiver's overflow point
  --soak-seconds N               soak length (default 600)
  --soak-rate N                  batches per second during the soak (default 2000)
  --soak-heap                    A runs with V8's inspector; each sample forces a full GC and reads A's
                                 main-isolate heap in use (tells live objects piling up from lazy GC)
  --daemon-v8-flags FLAGS        run the daemons with --v8-flags=FLAGS instead of joold's own ("" = V8's
                                 defaults), to compare heap settings
  --daemon-env NAME=VALUE        an environment variable of the daemons (repeatable), e.g. MALLOC_ARENA_MAX=1
  --profile                      also run one relay with --cpu-prof on both daemons and print hot spots
  --help                         this text
Results: .lab-out/bench/bench-DATE.json and markdown on stdout.`;

const PARTS = ["codec", "host", "memory", "lab"] as const;
type Part = typeof PARTS[number];

function die(message: string): never {
  console.error(`bench: ${message}`);
  Deno.exit(2);
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) die(`--${name}: a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

const { values } = (() => {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        only: { type: "string", multiple: true },
        quick: { type: "boolean" },
        "sync-mode": { type: "string" },
        auth: { type: "boolean" },
        ingress: { type: "boolean" },
        "double-threads": { type: "boolean" },
        "gc-trace": { type: "boolean" },
        repeat: { type: "string" },
        batches: { type: "string" },
        "inject-rate": { type: "string" },
        "soak-seconds": { type: "string" },
        "soak-rate": { type: "string" },
        "soak-heap": { type: "boolean" },
        profile: { type: "boolean" },
        "link-mtu": { type: "string" },
        "batch-sessions": { type: "string" },
        "daemon-v8-flags": { type: "string" },
        "daemon-env": { type: "string", multiple: true },
        help: { type: "boolean" },
      },
    });
  } catch (error) {
    die(`${errorMessage(error)}\n${USAGE}`);
  }
})();
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const only = (values.only ?? []).flatMap((o) => o.split(",")).map((o) => o.trim());
for (const o of only) if (!PARTS.includes(o as Part)) die(`--only: one of ${PARTS.join(", ")}, got "${o}"`);
const parts = new Set<Part>(only.length ? only as Part[] : PARTS);
const quick = values.quick ?? false;
const repeat = positive("repeat", values.repeat, quick ? 1 : 3);
const batches = positive("batches", values.batches, quick ? 20_000 : 200_000);
const soakSeconds = positive("soak-seconds", values["soak-seconds"], quick ? 30 : 600);
const soakRate = positive("soak-rate", values["soak-rate"], 2000);
const batchSessions = positive("batch-sessions", values["batch-sessions"], 36);
const injectRate = values["inject-rate"] === undefined
  ? undefined
  : positive("inject-rate", values["inject-rate"], 1);
const syncMode = values["sync-mode"] === "reliable" ? "reliable" : "upstream";
if (values["sync-mode"] !== undefined && values["sync-mode"] !== syncMode) {
  console.error(`--sync-mode: "upstream" or "reliable", got ${JSON.stringify(values["sync-mode"])}`);
  Deno.exit(2);
}

setDaemonV8Flags(values["daemon-v8-flags"]);
try {
  setDaemonEnv(values["daemon-env"] ?? []);
} catch (error) {
  die(errorMessage(error));
}
setLinkMtu(values["link-mtu"] === undefined ? undefined : positive("link-mtu", values["link-mtu"], 1500));

const OUT = `${ROOT}.lab-out/bench`;
await Deno.mkdir(OUT, { recursive: true });

function machine() {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString(),
    loadavg: Deno.readTextFileSync("/proc/loadavg").trim(),
  };
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits }) : "—";
const mib = (kib: number) => fmt(kib / 1024, 1);

// ---- codec -------------------------------------------------------------------------------------------------

interface CodecRow {
  name: string;
  perBatchNs: number;
  sessions: number;
  nsPerSession: number;
}

async function codec(): Promise<CodecRow[]> {
  const out = await new Deno.Command(DENO, {
    // --allow-ffi: the key file's HMAC uses libcrypto as the daemon does (without it, node:crypto's fallback).
    args: ["bench", "--json", "--allow-ffi", `${ROOT}scripts/bench/codec_bench.ts`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno bench failed: ${new TextDecoder().decode(out.stderr)}`);
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  return report.benches.map((b: { name: string; results: { ok: { avg: number } }[] }) => {
    const sessions = Number(b.name.match(/batch of (\d+)/)?.[1] ?? 1);
    const avg = b.results[0].ok.avg;
    return {
      name: b.name.replace(/ \(per batch of \d+\)/, ""),
      perBatchNs: avg,
      sessions,
      nsPerSession: avg / sessions,
    };
  });
}

function codecTable(rows: CodecRow[]): string {
  const lines = [
    "| function (input) | ns per batch | sessions per batch | ns per session |",
    "|---|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${fmt(r.perBatchNs)} | ${r.sessions} | ${fmt(r.nsPerSession)} |`);
  }
  return lines.join("\n");
}

// ---- host relay --------------------------------------------------------------------------------------------

interface HostSummary {
  runs: RelayResult[];
  median: Record<string, number>;
  otherHostCores: number[];
}

async function host(): Promise<HostSummary> {
  const runs: RelayResult[] = [];
  const other: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const busy0 = hostBusySeconds(), t0 = performance.now();
    const r = await runRelay({
      batches,
      maxSeconds: 30,
      sampleEvery: 100,
      syncMode,
      auth: values.auth ?? false,
      ingress: values.ingress,
      doubleThreads: values["double-threads"],
      sessionsPerBatch: batchSessions,
      injectRate,
      ...(values["gc-trace"] ? { gcTraceFile: `${OUT}/gc-trace-A-${i + 1}.log` } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    // Cores busy with anything else while this run (set-up and stats included) went on: a contention hint.
    other.push(Math.max(0, (hostBusySeconds() - busy0) / seconds));
    console.error(
      `host relay run ${i + 1}/${repeat}: ${fmt(r.sessionsPerSecond)} sessions/s at B, loss ${
        fmt(r.lossPercent, 1)
      } %, host busy ${fmt(other.at(-1)!, 2)} cores${
        r.gcA
          ? `; A's collections: ${r.gcA.scavenges} scavenges, ${r.gcA.markCompacts} mark-compacts, ${
            fmt(r.gcA.ms, 0)
          } ms (${fmt(r.gcA.scavenges / (r.sessionsRelayed / 1e6), 0)} scavenges per M sessions)`
          : ""
      }`,
    );
    runs.push(r);
  }
  const pick = (f: (r: RelayResult) => number) => median(runs.map(f));
  return {
    runs,
    otherHostCores: other,
    median: {
      intakeSessionsPerSecondA: pick((r) => r.intakePerSecondA * batchSessions),
      sessionsPerSecond: pick((r) => r.sessionsPerSecond),
      datagramsPerSecond: pick((r) => r.datagramsPerSecond),
      lossPercent: pick((r) => r.lossPercent),
      cpuPerMillionA: pick((r) => r.cpuSecondsPerMillionSessions.a),
      cpuPerMillionB: pick((r) => r.cpuSecondsPerMillionSessions.b),
      cpuOwnA: pick((r) => r.cpuByThread.a.own),
      cpuOwnB: pick((r) => r.cpuByThread.b.own),
      cpuDoubleA: pick((r) => r.cpuByThread.a.double),
      cpuDoubleB: pick((r) => r.cpuByThread.b.double),
      cpuMainA: pick((r) => r.cpuByThread.a.main),
      cpuMainB: pick((r) => r.cpuByThread.b.main),
      cpuKernelThreadA: pick((r) => r.cpuByThread.a.kernelThread),
      cpuKernelThreadB: pick((r) => r.cpuByThread.b.kernelThread),
      cpuOtherA: pick((r) => r.cpuByThread.a.other),
      cpuOtherB: pick((r) => r.cpuByThread.b.other),
      cpuUtilA: pick((r) => r.cpuUtilisation.a),
      cpuUtilB: pick((r) => r.cpuUtilisation.b),
      p50: pick((r) => r.latencyMs.p50),
      p99: pick((r) => r.latencyMs.p99),
      peakRssA: pick((r) => r.rssKiB.a.hwm),
      peakRssB: pick((r) => r.rssKiB.b.hwm),
      mismatched: Math.max(...runs.map((r) => r.mismatchedAdds)),
      splitA: pick((r) => r.splitAtA),
      fragmentedA: pick((r) => r.fragmentedAtA),
    },
  };
}

function hostTable(h: HostSummary): string {
  const m = h.median;
  const first = h.runs[0];
  const drops = h.runs.map((r) =>
    `A ${JSON.stringify(r.drops.a)} B ${JSON.stringify(r.drops.b)} B-UDP RcvbufErrors ${r.udpB.RcvbufErrors}`
  );
  return [
    `| figure (median of ${h.runs.length}) | value | target |`,
    "|---|---:|---|",
    `| batches injected per run | ${fmt(first.batchesInjected)} × ${batchSessions} sessions (format C) | |`,
    `| A's intake (kernel side: batches ACKed) | ${fmt(m.intakeSessionsPerSecondA)} sessions/s | |`,
    `| relayed A→B (sessions in B's JOOLD_ADDs) | **${fmt(m.sessionsPerSecond)} sessions/s** (${
      fmt(m.datagramsPerSecond)
    } datagrams/s) | ≥ 1 M sessions/s (≈ 28 k datagrams/s) |`,
    `| loss (sessions injected − sessions at B) | ${fmt(m.lossPercent, 1)} % | |`,
    `| ADDs not byte-identical | ${m.mismatched} | 0 |`,
    `| A: batches split (NET_BATCHES_SPLIT) / datagrams sent fragmented (NET_SENT_FRAGMENTED) | ${
      fmt(m.splitA)
    } / ${fmt(m.fragmentedA)} | |`,
    `| CPU s per M sessions, A / B | ${fmt(m.cpuPerMillionA, 2)} / ${
      fmt(m.cpuPerMillionB, 2)
    } | ≤ 1 (one core at 1 M/s) |`,
    `| … of which the kernel doubles' pump threads, A / B | ${fmt(m.cpuDoubleA, 2)} / ${
      fmt(m.cpuDoubleB, 2)
    } | (0 unless --double-threads) |`,
    `| daemon's own CPU s per M sessions (process − the double's threads), A / B | ${fmt(m.cpuOwnA, 2)} / ${
      fmt(m.cpuOwnB, 2)
    } | ≤ 0.5 (issue 10) |`,
    `| … by thread: main, kernel thread, rest (V8 helpers, runtime), A | ${fmt(m.cpuMainA, 2)}, ${
      fmt(m.cpuKernelThreadA, 2)
    }, ${fmt(m.cpuOtherA, 2)} | |`,
    `| … by thread: main, kernel thread, rest, B | ${fmt(m.cpuMainB, 2)}, ${fmt(m.cpuKernelThreadB, 2)}, ${
      fmt(m.cpuOtherB, 2)
    } | |`,
    `| CPU utilisation during the run, A / B | ${fmt(m.cpuUtilA, 2)} / ${fmt(m.cpuUtilB, 2)} cores | |`,
    `| latency injection → B's JOOLD_ADD, p50 / p99 | ${fmt(m.p50, 1)} / ${fmt(m.p99, 1)} ms | |`,
    `| peak RSS (VmHWM), A / B | ${mib(m.peakRssA)} / ${mib(m.peakRssB)} MiB | ≤ 64 MiB |`,
    `| host CPU busy per run (all processes) | ${
      h.otherHostCores.map((x) => fmt(x, 2)).join(", ")
    } cores of ${navigator.hardwareConcurrency} | |`,
    "",
    "Drops per run: " + drops.join("; "),
  ].join("\n");
}

// ---- memory ------------------------------------------------------------------------------------------------

interface MemorySummary {
  idle: RssSample[];
  soak: SoakResult;
  upstream: UpstreamProbe;
}

async function memory(): Promise<MemorySummary> {
  const idle = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) idle.push(await idleRss(5));
  const upstream = await probeUpstream();
  console.error(`soak: ${soakSeconds} s at ${soakRate} batches/s`);
  const result = await soak(soakSeconds, soakRate, 10, (line) => console.error(line), {
    heap: values["soak-heap"] === true,
  });
  return { idle, soak: result, upstream };
}

function memoryTable(m: MemorySummary, h?: HostSummary): string {
  const s = m.soak;
  const idleA = median(m.idle.map((x) => x.a)), idleB = median(m.idle.map((x) => x.b));
  const up = m.upstream;
  const upstreamText = !up.present
    ? `${up.path} is not installed`
    : `${up.path} exits with status ${up.exitCode} (${up.firstLine?.trim()}) without the Jool module: its RSS can only be measured in the VM lab`;
  return [
    "| VmRSS | A | B | target |",
    "|---|---:|---:|---|",
    `| idle, 5 s after start (median of ${m.idle.length}) | ${mib(idleA)} MiB | ${mib(idleB)} MiB | |`,
    `| idle RssAnon (median) | ${mib(median(m.idle.map((x) => x.anonA)))} MiB | ${
      mib(median(m.idle.map((x) => x.anonB)))
    } MiB | |`,
    h
      ? `| peak under saturation (VmHWM, median) | ${mib(h.median.peakRssA)} MiB | ${
        mib(h.median.peakRssB)
      } MiB | ≤ 64 MiB |`
      : undefined,
    `| soak first sample | ${mib(s.a.first)} MiB | ${mib(s.b.first)} MiB | |`,
    `| soak last sample | ${mib(s.a.last)} MiB | ${mib(s.b.last)} MiB | |`,
    `| soak max | ${mib(s.a.max)} MiB | ${mib(s.b.max)} MiB | ≤ 64 MiB steady |`,
    `| soak max RssAnon (heap: V8 + native; the rest is deno's file-backed pages) | ${
      mib(s.a.maxAnon)
    } MiB | ${mib(s.b.maxAnon)} MiB | |`,
    `| soak slope (least squares) | ${fmt(s.a.slopeKiBPerMinute, 1)} KiB/min | ${
      fmt(s.b.slopeKiBPerMinute, 1)
    } KiB/min | flat |`,
    `| soak slope, second half | ${fmt(s.a.slopeSecondHalfKiBPerMinute, 1)} KiB/min | ${
      fmt(s.b.slopeSecondHalfKiBPerMinute, 1)
    } KiB/min | flat |`,
    "",
    `Soak: ${fmt(s.seconds)} s at ${fmt(s.batchesPerSecond)} batches/s (${
      fmt(s.batchesPerSecond * 36)
    } sessions/s), ${fmt(s.batchesInjected)} batches, loss ${fmt(s.lossPercent, 2)} %, CPU A ${
      fmt(s.cpuSeconds.a, 1)
    } s / B ${fmt(s.cpuSeconds.b, 1)} s, other processes ${fmt(s.otherHostCores, 2)} cores.`,
    `Upstream: ${upstreamText}.`,
    "",
    "| stretch | VmRSS A / B at its end | RssAnon A / B at its end | CPU-s per M sessions, A / B |",
    "|---|---:|---:|---:|",
    ...s.windows.map((w) =>
      `| ${w.fromSecond}–${w.toSecond} s | ${mib(w.rssA)} / ${mib(w.rssB)} MiB | ${mib(w.anonA)} / ${
        mib(w.anonB)
      } MiB | ${fmt(w.cpuPerMillionA, 3)} / ${fmt(w.cpuPerMillionB, 3)} |`
    ),
    "",
    accountingText(s.accounting),
  ].filter((l) => l !== undefined).join("\n");
}

function accountingText(c: SoakAccounting): string {
  const drops = (d: Record<string, number>) =>
    Object.keys(d).length ? Object.entries(d).map(([k, v]) => `${k} ${fmt(v)}`).join(", ") : "none";
  return [
    `Where the sessions went: injected into A ${fmt(c.sessionsInjected)}; A received ${
      fmt(c.aKernelReceived)
    }, `,
    `sent ${fmt(c.aNetSent)} in ${fmt(c.aNetSentPackets)} datagrams (A's drops: ${drops(c.aDrops)}); `,
    `B received ${fmt(c.bNetReceived)} in ${fmt(c.bNetReceivedPackets)} datagrams (B's socket drops ${
      fmt(c.bSocketDrops)
    }), `,
    `sent ${fmt(c.bKernelSent)} to its kernel (B's drops: ${drops(c.bDrops)}). `,
    `Lost with no counter: ${fmt(c.unaccountedSessions)} sessions, ${fmt(c.unaccountedDatagrams)} datagrams.`,
  ].join("");
}

// ---- lab ---------------------------------------------------------------------------------------------------

async function lab(): Promise<string> {
  const usage = await Deno.readTextFile(`${ROOT}scripts/lab/main.ts`).catch(() => "");
  if (!usage.includes("--burst")) {
    return "The VM lab burst (with the upstream C joold column) is not available in scripts/lab yet; run `npx deno task lab` for the lab itself.";
  }
  const out = await new Deno.Command(DENO, {
    args: ["run", "--allow-all", `${ROOT}scripts/lab/main.ts`, "--burst"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

// ---- main --------------------------------------------------------------------------------------------------

const result: Record<string, unknown> = {
  machine: machine(),
  options: {
    parts: [...parts],
    quick,
    repeat,
    batches,
    soakSeconds,
    soakRate,
    doubleThreads: values["double-threads"] ?? false,
    syncMode,
    injectRate,
    daemonFlags: daemonFlags(),
    daemonEnv: daemonEnvironment(),
  },
};
const report: string[] = [];
const skip = hostBenchSkipReason();
if (parts.has("codec")) {
  const rows = await codec();
  result.codec = rows;
  report.push("## Codec (deno bench)\n\n" + codecTable(rows));
}
let hostSummary: HostSummary | undefined;
if (parts.has("host")) {
  if (skip) report.push(`## Host relay\n\nskipped: ${skip}`);
  else {
    hostSummary = await host();
    result.host = hostSummary;
    report.push("## Host relay at saturation\n\n" + hostTable(hostSummary));
    if (values.profile) {
      const dir = await Deno.makeTempDir({ dir: OUT, prefix: "prof-" });
      // The same daemons as the runs above (mode, key file, ingress filter), now profiled.
      const r = await runRelay({
        batches,
        maxSeconds: 30,
        sampleEvery: 100,
        cpuProfDir: dir,
        syncMode,
        auth: values.auth ?? false,
        ingress: values.ingress,
        sessionsPerBatch: batchSessions,
        injectRate,
      });
      const files = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`).sort();
      // One file per isolate: CPU.TIME.PID.cpuprofile for a daemon's main thread, CPU.TIME.PID.worker-N.cpuprofile
      // for its kernel thread. B was started first: the lower pid.
      const pidOf = (f: string) => Number(f.split("/").at(-1)!.split(".")[2]);
      const firstPid = Math.min(...files.map(pidOf));
      const tables = files.map((f) =>
        `${pidOf(f) === firstPid ? "B (receiver, started first)" : "A (sender)"}, ${
          f.includes(".worker-") ? "kernel thread" : "main thread"
        } — ${f.replace(ROOT, "")}\n\n` + hotSpotTable(summariseFile(f, 15, ROOT))
      );
      result.profile = { run: r, files };
      report.push("## Profiles (self time, whole process life)\n\n" + tables.join("\n\n"));
    }
  }
}
if (parts.has("memory")) {
  if (skip) report.push(`## Memory\n\nskipped: ${skip}`);
  else {
    const m = await memory();
    result.memory = m;
    report.push("## Memory (VmRSS)\n\n" + memoryTable(m, hostSummary));
  }
}
if (parts.has("lab")) {
  const text = await lab();
  result.lab = text;
  report.push("## VM lab burst\n\n" + text);
}
const file = `${OUT}/bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
await Deno.writeTextFile(file, JSON.stringify(result, null, 2));
const m = result.machine as ReturnType<typeof machine>;
console.log(
  `# joold-deno host benchmarks\n\nMachine: ${m.nproc} × ${m.cpu}, Linux ${m.kernel}, Deno ${m.deno} (V8 ${m.v8}), ${m.date}, load ${m.loadavg}\nDaemon flags: ${
    daemonFlags().join(" ")
  }${Object.entries(daemonEnvironment()).map(([k, v]) => ` ${k}=${v}`).join("")}\n\n${
    report.join("\n\n")
  }\n\nJSON: ${file.replace(ROOT, "")}`,
);
