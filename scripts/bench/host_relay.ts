/**
 * Host relay at saturation: the real daemon on both ends of a veth pair; A's kernel double gets format-C
 * batches of 36 sessions (or `sessionsPerBatch`) as fast as A takes them (the stdin pipe is the back-pressure),
 * B's double's JOOLD_ADDs are counted and checked byte for byte. Reports sessions/s A→B, loss, CPU per million sessions, latency and RSS.
 * @module
 */
import {
  cpuSeconds,
  DENO,
  Pair,
  ROOT,
  sh,
  sleep,
  statusKiB,
  type ThreadCpu,
  threadCpuSeconds,
} from "./harness.ts";
import { batch, multicastFrame, SEQ_OFFSET } from "./fixtures.ts";

/** Options of one relay run. */
export interface RelayOptions {
  /** Batches to inject at most. */
  readonly batches: number;
  /** Stop injecting after this many seconds even if not all batches went in. */
  readonly maxSeconds: number;
  /** Every n-th batch is timestamped for latency. */
  readonly sampleEvery: number;
  /** Directory for V8 CPU profiles of both daemons (`--cpu-prof`), if wanted. */
  readonly cpuProfDir?: string;
  /** Batches per pipe write. */
  readonly framesPerWrite?: number;
  /** netsocket.json's `"mode"` on both daemons (default upstream's). */
  readonly syncMode?: "upstream" | "reliable";
  /** A shared `"key file"` on both daemons (authentication). */
  readonly auth?: boolean;
  /** Sessions per kernel batch (default 36: 1 440 bytes of format-C entries). */
  readonly sessionsPerBatch?: number;
  /** B reads through the ingress filter (`"accept from"` A's address, with `"in interface"` eth0). */
  readonly ingress?: boolean;
  /**
   * The kernel doubles' pumps on threads of their own (`--kernel-double-threads`), so that each daemon's own
   * CPU is its process's minus those threads'. Without it the pumps run on the daemon's main thread and the
   * process's CPU (the figure of earlier runs) counts them as the daemon's.
   */
  readonly doubleThreads?: boolean;
  /** Inject at most this many sessions/s (default: as fast as A takes them). */
  readonly injectRate?: number;
  /**
   * A runs with `--trace-gc`, its stdout (the collector's lines, and the double's ACK frames) into this file;
   * the result counts A's collections during the measured window.
   */
  readonly gcTraceFile?: string;
}

/** Collections of one daemon (every isolate of it) during the measured window, from its `--trace-gc` lines. */
export interface GcCounts {
  scavenges: number;
  /** Full collections (`Mark-Compact`, any variant). */
  markCompacts: number;
  /** Milliseconds V8 reported for them, in all. */
  ms: number;
}

/** Counts the `--trace-gc` lines of `file` (bytes from `from` on). */
function gcCounts(file: string, from = 0): GcCounts & { end: number } {
  let text: string;
  try {
    text = new TextDecoder("latin1").decode(Deno.readFileSync(file));
  } catch {
    return { scavenges: 0, markCompacts: 0, ms: 0, end: 0 };
  }
  const counts = { scavenges: 0, markCompacts: 0, ms: 0, end: text.length };
  for (
    const match of text.slice(from).matchAll(
      / ms: (Scavenge|(?:Incremental )?Mark-Compact)[^\n]*?, ([0-9.]+) \/ [0-9.]+ ms/g,
    )
  ) {
    if (match[1] === "Scavenge") counts.scavenges++;
    else counts.markCompacts++;
    counts.ms += Number(match[2]);
  }
  return counts;
}

/**
 * A daemon's CPU seconds per million sessions relayed, by thread: the whole process (`total`, the earlier
 * runs' figure), the kernel double's pump threads (`double`, 0 unless they run on threads of their own), the
 * daemon's own (`total − double`), and the daemon's main thread, its kernel thread (the Worker thread that is
 * not a pump) and the rest (V8's helpers, the runtime's threads, threads that ended).
 */
export interface CpuBreakdown {
  total: number;
  double: number;
  own: number;
  main: number;
  kernelThread: number;
  other: number;
}

/** Figures of one relay run. */
export interface RelayResult {
  batchesInjected: number;
  /** Batches per second A's double took from the pipe (A's kernel-side intake). */
  intakePerSecondA: number;
  addsAtB: number;
  acksAtA: number;
  mismatchedAdds: number;
  /** A's NET_BATCHES_SPLIT and NET_SENT_FRAGMENTED: batches sent as several frames, datagrams sent in fragments. */
  splitAtA: number;
  fragmentedAtA: number;
  sessionsRelayed: number;
  seconds: number;
  sessionsPerSecond: number;
  datagramsPerSecond: number;
  lossPercent: number;
  drops: { a: Record<string, number>; b: Record<string, number> };
  udpB: Record<string, number>;
  cpuSecondsPerMillionSessions: { a: number; b: number };
  /** The same split by thread (see {@link CpuBreakdown}). */
  cpuByThread: { a: CpuBreakdown; b: CpuBreakdown };
  cpuUtilisation: { a: number; b: number };
  latencyMs: { samples: number; p50: number; p99: number; max: number };
  rssKiB: { a: { idle: number; peak: number; hwm: number }; b: { idle: number; peak: number; hwm: number } };
  /** A's collections in the measured window (with {@link RelayOptions.gcTraceFile}). */
  gcA?: GcCounts;
  /** The reliable mode's state at the end (`"reliable"` of each daemon's json view), in that mode only. */
  reliable?: { a: Record<string, unknown>; b: Record<string, unknown> };
}

/** Offset of the sequence number inside a frame: frame header 4 + Jool headers 48 + container header 4. */
const FRAME_SEQ_AT = 4 + 48 + 4 + SEQ_OFFSET;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function nonZero(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== 0));
}

/** One saturation run on a fresh namespace pair. */
export async function runRelay(options: RelayOptions): Promise<RelayResult> {
  const sessionsPerBatch = options.sessionsPerBatch ?? 36;
  const payload = batch(0, sessionsPerBatch, "C");
  const frame = multicastFrame(payload);
  const perWrite = options.framesPerWrite ?? 16;
  const chunk = new Uint8Array(frame.length * perWrite);
  for (let i = 0; i < perWrite; i++) chunk.set(frame, i * frame.length);
  const chunkView = new DataView(chunk.buffer);
  const sentAt = new Map<number, number>();
  const hex = Array.from(payload, (x) => x.toString(16).padStart(2, "0")).join("");
  const fifoDir = await Deno.makeTempDir({ prefix: "joold-bench-fifo-" });
  const fifo = `${fifoDir}/b.out`;
  await sh("mkfifo", fifo);
  const sink = new Sink(fifo, hex, options.sampleEvery);

  const pair = new Pair();
  try {
    const { nsA, nsB } = await pair.setup();
    const { syncMode, auth } = options;
    const netsocket = options.ingress ? { "accept from": ["2001:db8::1"] } : undefined;
    const doubleThreads = options.doubleThreads;
    const b = await pair.daemon(nsB, {
      cpuProfDir: options.cpuProfDir,
      stdoutFifo: fifo,
      syncMode,
      auth,
      netsocket,
      doubleThreads,
    });
    const gcTrace = options.gcTraceFile;
    const a = await pair.daemon(nsA, {
      cpuProfDir: options.cpuProfDir,
      syncMode,
      auth,
      doubleThreads,
      ...(gcTrace ? { stdoutFifo: gcTrace, extraV8Flags: ["--trace-gc"] } : {}),
    });
    await sleep(1000);
    const idle = { a: statusKiB(a.pid, "VmRSS") ?? 0, b: statusKiB(b.pid, "VmRSS") ?? 0 };
    const peak = { ...idle };
    const rssTimer = setInterval(() => {
      for (const [key, d] of [["a", a], ["b", b]] as const) {
        peak[key] = Math.max(peak[key], statusKiB(d.pid, "VmRSS") ?? 0);
      }
    }, 250);

    const cpu0 = { a: cpuSeconds(a.pid), b: cpuSeconds(b.pid) };
    const threads0 = { a: threadCpuSeconds(a.pid), b: threadCpuSeconds(b.pid) };
    const gc0 = gcTrace ? gcCounts(gcTrace) : undefined;
    const t0 = performance.now();
    const deadline = t0 + options.maxSeconds * 1000;
    let seq = 0;
    while (seq < options.batches && performance.now() < deadline && !a.exited) {
      const n = Math.min(perWrite, options.batches - seq);
      const now = performance.timeOrigin + performance.now();
      for (let i = 0; i < n; i++, seq++) {
        chunkView.setUint32(i * frame.length + FRAME_SEQ_AT, seq, false);
        if (seq % options.sampleEvery === 0) sentAt.set(seq, now);
      }
      await a.write(n === perWrite ? chunk : chunk.subarray(0, n * frame.length));
      if (options.injectRate !== undefined) {
        // Ahead of the rate: wait until the schedule catches up (ms-grained; the pipe still back-pressures).
        const due = t0 + (seq * sessionsPerBatch * 1000) / options.injectRate;
        const ahead = due - performance.now();
        if (ahead >= 1) await sleep(ahead);
      }
    }
    const injected = seq;
    const injectedAt = performance.now();
    // Drain: until every batch arrived, or nothing moved for 2 s (bounded by 30 s in all).
    let lastCount = -1, stableSince = performance.now();
    while (sink.count < injected && performance.now() - injectedAt < 30_000) {
      if (sink.count !== lastCount) {
        lastCount = sink.count;
        stableSince = performance.now();
      } else if (performance.now() - stableSince > 2000) break;
      await sleep(20);
    }
    const lastAddAt = sink.lastChange;
    const cpu1 = { a: cpuSeconds(a.pid), b: cpuSeconds(b.pid) };
    const threads1 = { a: threadCpuSeconds(a.pid), b: threadCpuSeconds(b.pid) };
    const gcA = gcTrace ? gcCounts(gcTrace, gc0!.end) : undefined;
    clearInterval(rssTimer);
    const hwm = { a: statusKiB(a.pid, "VmHWM") ?? 0, b: statusKiB(b.pid, "VmHWM") ?? 0 };
    const [sa, sb] = [await a.stats(), await b.stats()];
    const udpB = await pair.udpCounters(nsB);
    await b.stop(); // closes the FIFO: the sink reports
    const end = await sink.result();
    const latencies: number[] = [];
    for (const [s, at] of end.arrivals) {
      const sent = sentAt.get(s);
      if (sent !== undefined) latencies.push(at - sent);
    }
    latencies.sort((x, y) => x - y);
    const seconds = (Math.max(lastAddAt, injectedAt) - t0) / 1000;
    // Sessions, not ADDs × batch size: a framed wire may send a batch as several frames (lib/relay.ts).
    const sessions = end.sessions;
    const perMillion = (d: number) => sessions ? d / (sessions / 1e6) : NaN;
    return {
      batchesInjected: injected,
      intakePerSecondA: injected / ((injectedAt - t0) / 1000),
      addsAtB: end.adds,
      acksAtA: sa.counters.KERNEL_ACKS_SENT,
      mismatchedAdds: end.mismatched,
      splitAtA: sa.counters.NET_BATCHES_SPLIT ?? 0,
      fragmentedAtA: sa.counters.NET_SENT_FRAGMENTED ?? 0,
      sessionsRelayed: sessions,
      seconds,
      sessionsPerSecond: sessions / seconds,
      datagramsPerSecond: end.adds / seconds,
      lossPercent: injected
        ? 100 * (injected * sessionsPerBatch - sessions) / (injected * sessionsPerBatch)
        : 0,
      drops: { a: nonZero(sa.drops), b: nonZero(sb.drops) },
      udpB: {
        InDatagrams: udpB.Udp6InDatagrams,
        RcvbufErrors: udpB.Udp6RcvbufErrors,
        InErrors: udpB.Udp6InErrors,
      },
      cpuSecondsPerMillionSessions: { a: perMillion(cpu1.a - cpu0.a), b: perMillion(cpu1.b - cpu0.b) },
      cpuByThread: {
        a: breakdown(a.pid, doubleThreads ?? false, cpu1.a - cpu0.a, threads0.a, threads1.a, perMillion),
        b: breakdown(b.pid, doubleThreads ?? false, cpu1.b - cpu0.b, threads0.b, threads1.b, perMillion),
      },
      cpuUtilisation: { a: (cpu1.a - cpu0.a) / seconds, b: (cpu1.b - cpu0.b) / seconds },
      latencyMs: {
        samples: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? NaN,
      },
      rssKiB: {
        a: { idle: idle.a, peak: peak.a, hwm: hwm.a },
        b: { idle: idle.b, peak: peak.b, hwm: hwm.b },
      },
      ...(gcA ? { gcA: { scavenges: gcA.scavenges, markCompacts: gcA.markCompacts, ms: gcA.ms } } : {}),
      ...(sa.reliable && sb.reliable ? { reliable: { a: sa.reliable, b: sb.reliable } } : {}),
    };
  } finally {
    await pair.close();
    await sink.stop();
    await Deno.remove(fifoDir, { recursive: true });
  }
}

/**
 * Splits a daemon's CPU over the run by thread (`before`/`after`: {@link threadCpuSeconds} at its ends). Deno
 * names Worker threads `worker-N`: the kernel thread is the one at SCHED_FIFO (the bench runs as root), the
 * others are the double's pumps when `doubleThreads`.
 */
function breakdown(
  pid: number,
  doubleThreads: boolean,
  total: number,
  before: Map<number, ThreadCpu>,
  after: Map<number, ThreadCpu>,
  perMillion: (seconds: number) => number,
): CpuBreakdown {
  const spent = (tid: number) => (after.get(tid)?.seconds ?? 0) - (before.get(tid)?.seconds ?? 0);
  let double = 0, kernelThread = 0;
  for (const [tid, { name, realtime }] of after) {
    if (!name.startsWith("worker-")) continue;
    if (realtime) kernelThread += spent(tid);
    else if (doubleThreads) double += spent(tid);
  }
  const main = spent(pid);
  return {
    total: perMillion(total),
    double: perMillion(double),
    own: perMillion(total - double),
    main: perMillion(main),
    kernelThread: perMillion(kernelThread),
    other: perMillion(total - double - main - kernelThread),
  };
}

interface SinkResult {
  adds: number;
  sessions: number;
  acks: number;
  others: number;
  mismatched: number;
  arrivals: [number, number][];
}

/** sink.ts reading B's double's stdout from the FIFO. */
class Sink {
  readonly #child: Deno.ChildProcess;
  count = 0;
  /** Driver time (performance.now()) of the last count change. */
  lastChange = 0;
  readonly #final: Promise<SinkResult>;

  constructor(fifo: string, expectedHex: string, sampleEvery: number) {
    this.#child = new Deno.Command(DENO, {
      args: [
        "run",
        "--quiet",
        "--allow-read",
        `${ROOT}scripts/bench/sink.ts`,
        fifo,
        expectedHex,
        String(sampleEvery),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#final = this.#read();
  }

  async #read(): Promise<SinkResult> {
    let pending = "";
    let final: SinkResult | undefined;
    for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith("count ")) {
          const n = Number(line.slice(6));
          if (n !== this.count) this.lastChange = performance.now();
          this.count = n;
        } else if (line.startsWith("{")) final = JSON.parse(line);
      }
    }
    await this.#child.status;
    if (!final) throw new Error("sink.ts ended without its result");
    return final;
  }

  /** The sink's final figures (after the writer closed the FIFO). */
  result(): Promise<SinkResult> {
    return this.#final;
  }

  /** Kills the sink if still running, and waits for it. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already exited
    }
    await this.#final.catch(() => {/* a killed sink has no result: result() already reported it */});
  }
}
