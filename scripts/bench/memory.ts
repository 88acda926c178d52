/**
 * Memory of our daemon: VmRSS at idle and during a soak (a steady paced load for N seconds, sampled every
 * 10 s: first, last, max and the least-squares slope), plus whether upstream's joold can start here at all.
 * @module
 */
import { cpuSeconds, DENO, hostBusySeconds, Pair, ROOT, sh, sleep, statusKiB } from "./harness.ts";
import { batch, multicastFrame, SEQ_OFFSET } from "./fixtures.ts";

/** One RSS sample (KiB): VmRSS, and its anonymous part (heap: V8's and native) of each daemon. */
export interface RssSample {
  readonly second: number;
  readonly a: number;
  readonly b: number;
  readonly anonA: number;
  readonly anonB: number;
  /** Soak only: each daemon's CPU seconds since the load started, and batches injected so far. */
  readonly cpuA?: number;
  readonly cpuB?: number;
  readonly batches?: number;
  /** Soak with `heap`: A's main-isolate heap in use right after a forced full GC (bytes). */
  readonly heapUsedA?: number;
}

/** One stretch of a soak: RSS at its end and CPU per million sessions within it. */
export interface SoakWindow {
  readonly fromSecond: number;
  readonly toSecond: number;
  readonly rssA: number;
  readonly rssB: number;
  readonly anonA: number;
  readonly anonB: number;
  readonly cpuPerMillionA: number;
  readonly cpuPerMillionB: number;
}

/**
 * Where every session of a soak went, hop by hop, and the counter that accounts for each loss: the kernel
 * double → A (A's kernel_* drops), A's relay → the network (sessions received minus sent), the veth → B's
 * socket (datagrams sent minus received = B's NET_SOCKET_DROPS), B → its kernel double (B's net_* drops).
 */
export interface SoakAccounting {
  sessionsInjected: number;
  aKernelReceived: number;
  aNetSent: number;
  aNetSentPackets: number;
  aDrops: Record<string, number>;
  bNetReceived: number;
  bNetReceivedPackets: number;
  bSocketDrops: number;
  bKernelSent: number;
  bDrops: Record<string, number>;
  /** Sessions lost that no counter accounts for (0 when every drop is counted). */
  unaccountedSessions: number;
  /** Datagrams lost between A and B that B's socket counter does not account for. */
  unaccountedDatagrams: number;
}

/** Figures of a soak. */
export interface SoakResult {
  seconds: number;
  batchesPerSecond: number;
  batchesInjected: number;
  sessionsAddedAtB: number;
  lossPercent: number;
  samples: RssSample[];
  a: RssSummary;
  b: RssSummary;
  cpuSeconds: { a: number; b: number };
  otherHostCores: number;
  windows: SoakWindow[];
  accounting: SoakAccounting;
}

/** first/last/max VmRSS (KiB) and the slope in KiB per minute. */
export interface RssSummary {
  first: number;
  last: number;
  max: number;
  /** RssAnon at the last sample and its largest value (the rest of VmRSS is file-backed: deno's binary). */
  lastAnon: number;
  maxAnon: number;
  slopeKiBPerMinute: number;
  /** The same over the second half only (after the heap's warm-up). */
  slopeSecondHalfKiBPerMinute: number;
}

/** Least-squares slope of VmRSS (KiB) against minutes. */
function slope(samples: RssSample[], key: "a" | "b"): number {
  const ys = samples.map((s) => s[key]);
  const xs = samples.map((s) => s.second / 60);
  const n = xs.length;
  const mx = xs.reduce((p, x) => p + x, 0) / n, my = ys.reduce((p, y) => p + y, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

function summary(samples: RssSample[], key: "a" | "b"): RssSummary {
  const ys = samples.map((s) => s[key]);
  const anon = samples.map((s) => key === "a" ? s.anonA : s.anonB);
  const half = samples.at(-1)!.second / 2;
  return {
    first: ys[0],
    last: ys.at(-1)!,
    max: Math.max(...ys),
    lastAnon: anon.at(-1)!,
    maxAnon: Math.max(...anon),
    slopeKiBPerMinute: slope(samples, key),
    slopeSecondHalfKiBPerMinute: slope(samples.filter((s) => s.second >= half), key),
  };
}

function sample(elapsed: number, a: number, b: number, extra?: Partial<RssSample>): RssSample {
  return {
    second: Math.round(elapsed),
    a: statusKiB(a, "VmRSS") ?? 0,
    b: statusKiB(b, "VmRSS") ?? 0,
    anonA: statusKiB(a, "RssAnon") ?? 0,
    anonB: statusKiB(b, "RssAnon") ?? 0,
    ...extra,
  };
}

/** Splits a soak's samples into `count` equal stretches: RSS at each end, CPU per million sessions in each. */
export function soakWindows(samples: RssSample[], count: number, sessionsPerBatch: number): SoakWindow[] {
  const last = samples.at(-1)!.second;
  const windows: SoakWindow[] = [];
  let start = samples[0];
  for (let i = 1; i <= count; i++) {
    const until = (last * i) / count;
    const end = samples.findLast((s) => s.second <= until) ?? samples.at(-1)!;
    const sessions = ((end.batches ?? 0) - (start.batches ?? 0)) * sessionsPerBatch;
    const perMillion = (cpu: number) => sessions > 0 ? cpu / (sessions / 1e6) : 0;
    windows.push({
      fromSecond: start.second,
      toSecond: end.second,
      rssA: end.a,
      rssB: end.b,
      anonA: end.anonA,
      anonB: end.anonB,
      cpuPerMillionA: perMillion((end.cpuA ?? 0) - (start.cpuA ?? 0)),
      cpuPerMillionB: perMillion((end.cpuB ?? 0) - (start.cpuB ?? 0)),
    });
    start = end;
  }
  return windows;
}

/** The hop-by-hop accounting of a soak from both daemons' final counters. */
export function soakAccounting(
  sessionsInjected: number,
  a: { counters: Record<string, number>; drops: Record<string, number> },
  b: { counters: Record<string, number>; drops: Record<string, number> },
): SoakAccounting {
  const nonZero = (d: Record<string, number>) =>
    Object.fromEntries(Object.entries(d).filter(([, v]) => v > 0));
  const aKernelReceived = a.counters.KERNEL_RCVD_SESSIONS, aNetSent = a.counters.NET_SENT_SESSIONS;
  const bNetReceived = b.counters.NET_RCVD_SESSIONS, bKernelSent = b.counters.KERNEL_SENT_SESSIONS;
  const aSentPackets = a.counters.NET_SENT_PKTS, bReceivedPackets = b.counters.NET_RCVD_PKTS;
  const bSocketDrops = b.counters.NET_SOCKET_DROPS;
  const countedA = Object.values(a.drops).reduce((x, y) => x + y, 0);
  const countedB = Object.values(b.drops).reduce((x, y) => x + y, 0);
  const lostDatagrams = aSentPackets - bReceivedPackets;
  // A loss with no counter: sessions gone at a hop whose drop counter stayed at zero.
  const hop = (lost: number, counted: number) => lost > 0 && counted === 0 ? lost : 0;
  return {
    sessionsInjected,
    aKernelReceived,
    aNetSent,
    aNetSentPackets: aSentPackets,
    aDrops: nonZero(a.drops),
    bNetReceived,
    bNetReceivedPackets: bReceivedPackets,
    bSocketDrops,
    bKernelSent,
    bDrops: nonZero(b.drops),
    unaccountedSessions: hop(sessionsInjected - aNetSent, countedA) +
      hop(bNetReceived - bKernelSent, countedB) +
      hop(aNetSent - bNetReceived, bSocketDrops),
    unaccountedDatagrams: Math.max(0, lostDatagrams - bSocketDrops),
  };
}

/** VmRSS of both daemons after they have been up and idle for `seconds`. */
export async function idleRss(seconds = 5): Promise<RssSample> {
  const pair = new Pair();
  try {
    const { nsA, nsB } = await pair.setup();
    const b = await pair.daemon(nsB);
    const a = await pair.daemon(nsA);
    await sleep(seconds * 1000);
    return sample(seconds, a.pid, b.pid);
  } finally {
    await pair.close();
  }
}

/**
 * A steady load of `batchesPerSecond` 36-session batches into A for `seconds`, VmRSS of both daemons sampled
 * every `sampleSeconds` (the first sample once the load runs).
 */
export async function soak(
  seconds: number,
  batchesPerSecond: number,
  sampleSeconds = 10,
  progress: (line: string) => void = () => {},
  options: { readonly heap?: boolean } = {},
): Promise<SoakResult> {
  const payload = batch(0, 36, "C");
  const frame = multicastFrame(payload);
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((batchesPerSecond * tickMs) / 1000));
  const chunk = new Uint8Array(frame.length * perTick);
  for (let i = 0; i < perTick; i++) chunk.set(frame, i * frame.length);
  const view = new DataView(chunk.buffer);
  const pair = new Pair();
  try {
    const { nsA, nsB } = await pair.setup();
    const b = await pair.daemon(nsB);
    const inspector = "127.0.0.1:9229";
    const a = await pair.daemon(nsA, options.heap ? { inspect: inspector } : {});
    // Live objects that pile up survive a full GC; a heap that only grows before its next major GC does not.
    // Snapshots after a minute (warmed up) and at the end: `heap_usage.ts --compare` shows what grew.
    const snapshotDir = `${ROOT}.lab-out/bench`;
    const heapUsed = async (second?: number) => {
      if (!options.heap) return {};
      const script = `${ROOT}scripts/bench/heap_usage.ts`;
      const snapshot = second === undefined
        ? []
        : ["--snapshot", `${snapshotDir}/soak-A-${second}s.heapsnapshot`];
      if (second !== undefined) await Deno.mkdir(snapshotDir, { recursive: true });
      const deno = [DENO, "run", "--quiet", "--allow-net", "--allow-write", script];
      const out = await sh("ip", "netns", "exec", nsA, ...deno, ...snapshot, inspector);
      return { heapUsedA: (JSON.parse(out) as { used: number }).used };
    };
    const samples: RssSample[] = [];
    const cpu0 = { a: cpuSeconds(a.pid), b: cpuSeconds(b.pid) };
    const host0 = hostBusySeconds();
    const t0 = performance.now();
    let seq = 0, nextSample = 0;
    const cpuSince = (batches: number) => ({
      cpuA: cpuSeconds(a.pid) - cpu0.a,
      cpuB: cpuSeconds(b.pid) - cpu0.b,
      batches,
    });
    // Paced: one chunk per tick, catching up when a tick was late (bounded by the wall clock).
    while (performance.now() - t0 < seconds * 1000 && !a.exited && !b.exited) {
      const elapsed = (performance.now() - t0) / 1000;
      if (elapsed >= nextSample) {
        const snapshotAt = nextSample === 60 ? 60 : undefined;
        samples.push(sample(elapsed, a.pid, b.pid, { ...cpuSince(seq), ...await heapUsed(snapshotAt) }));
        const s = samples.at(-1)!;
        progress(
          `soak ${s.second}/${seconds} s: VmRSS A ${s.a} KiB (anon ${s.anonA}), B ${s.b} KiB (anon ${s.anonB}), ` +
            `CPU A ${s.cpuA?.toFixed(1)} s, B ${s.cpuB?.toFixed(1)} s` +
            (s.heapUsedA === undefined ? "" : `, A's heap after GC ${(s.heapUsedA / 1024).toFixed(0)} KiB`),
        );
        nextSample += sampleSeconds;
      }
      const due = Math.floor(elapsed * batchesPerSecond);
      if (seq + perTick <= due) {
        for (let i = 0; i < perTick; i++) {
          view.setUint32(i * frame.length + 4 + 48 + 4 + SEQ_OFFSET, seq++, false);
        }
        await a.write(chunk);
      } else await sleep(tickMs);
    }
    const elapsed = (performance.now() - t0) / 1000;
    samples.push(sample(elapsed, a.pid, b.pid, { ...cpuSince(seq), ...await heapUsed(Math.round(elapsed)) }));
    await sleep(2000);
    const cpu = { a: cpuSeconds(a.pid) - cpu0.a, b: cpuSeconds(b.pid) - cpu0.b };
    const other = (hostBusySeconds() - host0) - cpu.a - cpu.b;
    const sa = await a.stats();
    const sb = await b.stats();
    // Sessions, not batches: A's relay may join batches that queue behind a send into one datagram.
    const added = sb.counters.KERNEL_SENT_SESSIONS;
    return {
      seconds: elapsed,
      batchesPerSecond,
      batchesInjected: seq,
      sessionsAddedAtB: added,
      lossPercent: seq ? 100 * (seq * 36 - added) / (seq * 36) : 0,
      samples,
      a: summary(samples, "a"),
      b: summary(samples, "b"),
      cpuSeconds: cpu,
      otherHostCores: other / (elapsed + 2),
      windows: soakWindows(samples, Math.max(1, Math.min(6, Math.floor(elapsed / 60))), 36),
      accounting: soakAccounting(seq * 36, sa, sb),
    };
  } finally {
    await pair.close();
  }
}

/** What happens when upstream's joold (Debian jool-tools) starts on this host. */
export interface UpstreamProbe {
  path: string;
  present: boolean;
  exitCode?: number;
  firstLine?: string;
  rssKiB?: number;
}

/** Starts /usr/bin/joold (or /usr/sbin/joold) with a valid configuration in a throw-away namespace. */
export async function probeUpstream(): Promise<UpstreamProbe> {
  const path = ["/usr/sbin/joold", "/usr/bin/joold"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false; // absent: try the next path
    }
  });
  if (!path) return { path: "/usr/sbin/joold", present: false };
  const pair = new Pair();
  const dir = await Deno.makeTempDir({ prefix: "joold-upstream-" });
  try {
    const { nsA } = await pair.setup();
    await Deno.writeTextFile(
      `${dir}/netsocket.json`,
      JSON.stringify({
        "multicast address": "ff08::db8:64:64",
        "multicast port": "6464",
        "in interface": "eth0",
        "out interface": "eth0",
        reuseaddr: 1,
        ttl: 1,
      }),
    );
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", nsA, path, "netsocket.json", "modsocket.json"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let rss: number | undefined;
    const timer = setTimeout(() => {
      rss = statusKiB(child.pid, "VmRSS");
      child.kill("SIGTERM");
    }, 2000);
    const out = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    const lines = text.split("\n").filter((l) => l.trim());
    return {
      path,
      present: true,
      exitCode: out.code,
      firstLine: lines.find((l) => /error/i.test(l)) ?? lines.at(-1),
      rssKiB: rss,
    };
  } finally {
    await pair.close();
    await Deno.remove(dir, { recursive: true });
  }
}
