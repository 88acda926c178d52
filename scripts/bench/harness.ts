/**
 * Benchmark harness: two network namespaces joined by a veth pair, the real daemon (main.ts) with the kernel
 * double in each, the double's stdout parsed as netlink frames, the stats `json` view, and /proc readings
 * (CPU ticks, VmRSS) of the deno processes. Everything it creates is removed by {@link Pair.close}.
 * @module
 */

/** Project root (absolute, trailing slash). */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The deno binary running the benchmark (the pinned one under `deno task`). */
export const DENO = Deno.execPath();
import { DAEMON_FLAGS, PERMISSION_FLAGS } from "../../tests/helpers/daemon_process.ts";
/** Flags of `deno task start` (one definition, shared with the tests). */
export { DAEMON_FLAGS };

/** `--v8-flags=…` the benchmark daemons run with instead of DAEMON_FLAGS' own (bench `--daemon-v8-flags`). */
let v8FlagsOverride: string | undefined;

let linkMtu: number | undefined;
/**
 * MTU of the pair's veth link (default the kernel's, 1 500). A larger one shows what IP fragmentation costs a
 * wire whose datagrams outgrow 1 500 bytes (a full batch framed and authenticated is 1 564 bytes on the wire).
 */
export function setLinkMtu(mtu: number | undefined): void {
  linkMtu = mtu;
}

/**
 * Runs the benchmark daemons with `--v8-flags=FLAGS` ("" = V8's defaults) instead of joold's own; FLAGS are
 * separated by commas or spaces.
 */
export function setDaemonV8Flags(flags: string | undefined): void {
  v8FlagsOverride = flags?.split(/[\s,]+/).filter((f) => f).join(",");
}

/** Extra environment of the benchmark daemons (bench `--daemon-env`). */
let daemonEnv: Record<string, string> = {};

/**
 * Runs the benchmark daemons with these environment variables too (`NAME=VALUE` each), e.g. glibc's
 * `MALLOC_ARENA_MAX=1`, to compare settings an operator's unit file could make.
 */
export function setDaemonEnv(pairs: string[]): void {
  daemonEnv = Object.fromEntries(pairs.map((pair) => {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--daemon-env: NAME=VALUE, got ${JSON.stringify(pair)}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

/** The extra environment of the benchmark daemons ({@link setDaemonEnv}). */
export function daemonEnvironment(): Record<string, string> {
  return { ...daemonEnv };
}

/** The flags a benchmark daemon runs with. */
export function daemonFlags(): string[] {
  if (v8FlagsOverride === undefined) return DAEMON_FLAGS;
  return v8FlagsOverride ? [...PERMISSION_FLAGS, `--v8-flags=${v8FlagsOverride}`] : PERMISSION_FLAGS;
}
/** Stats port of the benchmark daemons (each in its own namespace). */
export const STATS_PORT = 46700;
/** genl commands the daemon sends its kernel. */
export const JOOLD_ADD = 27;
export const JOOLD_ACK = 29;
/** Clock ticks per second of /proc/PID/stat (USER_HZ; 100 on every Linux architecture Deno runs on). */
export const CLK_TCK = 100;
/** Offset of the session container's payload in a JOOLD_ADD (nlmsghdr + genl + Jool header + nla header). */
export const ADD_PAYLOAD_OFFSET = 52;

/** Runs a command; throws with its stderr when it fails. Returns stdout. (Shared with the netns tests.) */
export { sh } from "../../tests/netns/namespaces.ts";
import { sh } from "../../tests/netns/namespaces.ts";

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Why the host benchmarks cannot run here, or undefined. */
export function hostBenchSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "needs root to create network namespaces";
  return undefined;
}

/** utime + stime of a process, in seconds (all its threads). */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** One thread's CPU so far: its name, utime + stime in seconds, and whether it runs at SCHED_FIFO. */
export interface ThreadCpu {
  readonly name: string;
  readonly seconds: number;
  readonly realtime: boolean;
}

/** {@link ThreadCpu} of each live thread of a process, by thread id. */
export function threadCpuSeconds(pid: number): Map<number, ThreadCpu> {
  const out = new Map<number, ThreadCpu>();
  let tasks: Deno.DirEntry[];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return out;
    throw error;
  }
  for (const task of tasks) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(task.name), {
        name,
        seconds: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
        realtime: Number(fields[38]) === SCHED_FIFO, // field 41, the policy
      });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error; // the thread ended meanwhile
    }
  }
  return out;
}

const SCHED_FIFO = 1;

/** A field of /proc/PID/status in KiB (VmRSS, VmHWM…), or undefined when the process is gone. */
export function statusKiB(pid: number, field: string): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Options of a daemon run. */
export interface DaemonOptions {
  /** Write a V8 CPU profile into this directory at exit (`deno run --cpu-prof`). */
  readonly cpuProfDir?: string;
  /**
   * Where the double's stdout (the daemon's netlink messages) goes: nowhere (default; the stats view counts
   * them), or a FIFO read by sink.ts, or a file (with `--trace-gc`: the collector's lines are read from it). Never a pipe to the driver: a slow reader would block the daemon's
   * synchronous writes and measure the driver instead of the daemon.
   */
  readonly stdoutFifo?: string;
  /** netsocket.json's `"mode"` (default upstream's). */
  readonly syncMode?: "upstream" | "reliable";
  /** Open V8's inspector on this host:port inside the daemon's namespace (`deno run --inspect`). */
  readonly inspect?: string;
  /** A `"key file"` (the pair's shared key): every frame authenticated. */
  readonly auth?: boolean;
  /** More netsocket.json keys (e.g. `"accept from"` for the ingress-filtered receive path). */
  readonly netsocket?: Record<string, unknown>;
  /** The kernel double's pumps on threads of their own (`--kernel-double-threads`, `tests/helpers/kernel_double_pump.ts`). */
  readonly doubleThreads?: boolean;
  /** V8 flags added to the daemon's own (e.g. `--trace-gc`, whose lines go to stdout: see `stdoutFifo`). */
  readonly extraV8Flags?: readonly string[];
}

/** `flags` with `extra` V8 flags added to its `--v8-flags=` (or in one of their own). */
function withV8Flags(flags: readonly string[], extra: readonly string[] | undefined): string[] {
  if (!extra || extra.length === 0) return [...flags];
  const at = flags.findIndex((f) => f.startsWith("--v8-flags="));
  if (at < 0) return [...flags, `--v8-flags=${extra.join(",")}`];
  return flags.map((f, i) => i === at ? `${f},${extra.join(",")}` : f);
}

/** The real daemon with its kernel double, inside a namespace. */
export class DaemonProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<unknown>;
  readonly log: string[] = [];
  exited = false;
  status: Deno.CommandStatus | undefined;

  constructor(readonly ns: string, dir: string, options: DaemonOptions = {}) {
    const prof = options.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : [];
    if (options.inspect) prof.push(`--inspect=${options.inspect}`);
    const command = [
      "ip",
      "netns",
      "exec",
      ns,
      DENO,
      "run",
      "--quiet",
      ...prof,
      ...withV8Flags(daemonFlags(), options.extraV8Flags),
      `${ROOT}tests/helpers/joold_double.ts`,
      "netsocket.json",
      "modsocket.json",
      String(STATS_PORT),
      "--kernel-double=4.1.13",
      ...(options.doubleThreads ? ["--kernel-double-threads"] : []),
    ];
    // `sh -c 'exec "$@" > FIFO'` then `ip netns exec` exec in place: the child's pid stays the daemon's.
    const [program, args] = options.stdoutFifo
      ? ["sh", ["-c", `exec "$@" > '${options.stdoutFifo}'`, "sh", ...command]]
      : [command[0], command.slice(1)];
    this.#child = new Deno.Command(program, {
      args,
      cwd: dir,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1", ...daemonEnv },
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#done = Promise.all([
      this.#readLog(),
      this.#child.status.then((s) => {
        this.exited = true;
        this.status = s;
      }),
    ]);
  }

  /** Process id of the deno running main.ts. */
  get pid(): number {
    return this.#child.pid;
  }

  async #readLog(): Promise<void> {
    let pending = "";
    for await (const text of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      // Bounded: keep the first 200 lines (start-up, first warnings) and count the rest.
      for (const line of lines) if (this.log.length < 200) this.log.push(line);
    }
  }

  /** Waits (bounded) for the daemon's start-up line. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.log.some((l) => l.includes("relaying instance"))) {
      if (this.exited || Date.now() > deadline) {
        throw new Error(
          `${this.ns}: daemon ${this.exited ? "exited" : "not ready"}; log:\n${this.log.join("\n")}`,
        );
      }
      await sleep(50);
    }
  }

  /** Writes bytes to the double's stdin (resolves once the pipe took them: the daemon's back-pressure). */
  write(bytes: Uint8Array): Promise<void> {
    return this.#stdin.write(bytes);
  }

  /** The stats server's `json` view. */
  async stats(): Promise<
    { counters: Record<string, number>; drops: Record<string, number>; reliable?: Record<string, unknown> }
  > {
    const script = `const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
await c.send(new TextEncoder().encode("json"), { transport: "udp", hostname: "127.0.0.1", port: ${STATS_PORT} });
const t = setTimeout(() => Deno.exit(9), 5000);
const [d] = await c.receive(); console.log(new TextDecoder().decode(d)); c.close(); clearTimeout(t);`;
    const out = await sh("ip", "netns", "exec", this.ns, DENO, "eval", "--quiet", "--unstable-net", script);
    return JSON.parse(out);
  }

  /** Closes stdin, sends SIGTERM, waits (bounded: SIGKILL after 10 s). */
  async stop(): Promise<void> {
    await this.#stdin.close().catch((error) => {
      if (!(error instanceof Deno.errors.BrokenPipe) && !(error instanceof TypeError)) throw error;
    });
    if (!this.exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch (error) {
        if (!(error instanceof TypeError)) throw error; // already exited
      }
    }
    const killer = setTimeout(() => {
      if (!this.exited) this.#child.kill("SIGKILL");
    }, 10_000);
    await this.#done;
    clearTimeout(killer);
  }
}

let serial = 0;

/** Two namespaces, a veth `eth0` between them (2001:db8::1 / ::2), a daemon in each on ff08::db8:64:64. */
export class Pair {
  readonly namespaces: string[] = [];
  readonly dirs: string[] = [];
  readonly daemons: DaemonProcess[] = [];
  /** The key both daemons share when run with {@link DaemonOptions.auth}. */
  readonly key: Uint8Array = crypto.getRandomValues(new Uint8Array(32));

  /** Builds the namespaces and the link (no daemon yet). */
  async setup(): Promise<{ nsA: string; nsB: string }> {
    const names = ["a", "b"].map((role) => `jdb-${Deno.pid}-${++serial}-${role}`);
    for (const name of names) {
      await sh("ip", "netns", "add", name);
      this.namespaces.push(name);
      await sh("ip", "-n", name, "link", "set", "lo", "up");
      for (const key of ["all", "default"]) {
        await sh("ip", "netns", "exec", name, "sysctl", "-qw", `net.ipv6.conf.${key}.accept_dad=0`);
      }
    }
    const [nsA, nsB] = names;
    await sh("ip", "link", "add", "eth0", "netns", nsA, "type", "veth", "peer", "name", "eth0", "netns", nsB);
    for (const [ns, address] of [[nsA, "2001:db8::1/64"], [nsB, "2001:db8::2/64"]]) {
      if (linkMtu !== undefined) await sh("ip", "-n", ns, "link", "set", "eth0", "mtu", String(linkMtu));
      await sh("ip", "-n", ns, "address", "add", address, "dev", "eth0", "nodad");
      await sh("ip", "-n", ns, "link", "set", "eth0", "up");
    }
    // A veth end transmits only once linkwatch replaced the "noop" qdisc: wait for it (bounded).
    for (const ns of names) {
      for (let attempt = 0;; attempt++) {
        const line = await sh("ip", "-n", ns, "-o", "link", "show", "dev", "eth0");
        if (line.includes("state UP") && !line.includes("qdisc noop")) break;
        if (attempt > 100) throw new Error(`${ns}/eth0 did not come up within 5 s`);
        await sleep(50);
      }
    }
    return { nsA, nsB };
  }

  /** Starts a daemon in `ns` and waits for it to be ready. */
  async daemon(ns: string, options: DaemonOptions = {}): Promise<DaemonProcess> {
    const dir = await Deno.makeTempDir({ prefix: "joold-bench-" });
    this.dirs.push(dir);
    const net = {
      "multicast address": "ff08::db8:64:64",
      "multicast port": "6464",
      "in interface": "eth0",
      "out interface": "eth0",
      reuseaddr: 1,
      ttl: 1,
      ...(options.syncMode === "reliable" ? { mode: "reliable" } : {}),
      ...(options.auth ? { "key file": `${dir}/sync.key` } : {}),
      ...options.netsocket,
    };
    if (options.auth) await Deno.writeFile(`${dir}/sync.key`, this.key, { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify(net, null, "\t"));
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    const daemon = new DaemonProcess(ns, dir, options);
    this.daemons.push(daemon);
    await daemon.ready();
    return daemon;
  }

  /** UDP counters of /proc/net/snmp inside `ns` (InDatagrams, RcvbufErrors…). */
  async udpCounters(ns: string): Promise<Record<string, number>> {
    const text = await sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp6");
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const [key, value] = line.trim().split(/\s+/);
      if (key?.startsWith("Udp6")) out[key] = Number(value);
    }
    return out;
  }

  /** Stops the daemons, deletes the namespaces and temporary directories. */
  async close(): Promise<void> {
    for (const d of this.daemons) await d.stop();
    for (const ns of this.namespaces.reverse()) await sh("ip", "netns", "del", ns);
    for (const dir of this.dirs) await Deno.remove(dir, { recursive: true });
  }
}

/** Busy jiffies of the whole host (all CPUs) from /proc/stat, in seconds. */
export function hostBusySeconds(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}
