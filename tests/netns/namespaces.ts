/**
 * Network-namespace lab for tests/netns: namespaces with unique names, veth links with documentation
 * addresses, line-oriented child processes run inside a namespace, and tcpdump captures.
 *
 * Every test creates its own namespaces and deletes them in `finally` ({@link Lab.cleanup}).
 * @module
 */
import { DENO } from "../helpers/daemon_process.ts";

/** Why netns tests cannot run here, or undefined when they can. */
export function netnsSkipReason(options: NetnsTestOptions = {}): string | undefined {
  for (const file of options.files ?? []) {
    try {
      Deno.statSync(file);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return `${file} does not exist yet`;
    }
  }
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "needs root to create network namespaces";
  if (!which("ip")) return "needs iproute2 (ip)";
  if (options.tcpdump && !which("tcpdump")) return "needs tcpdump (apt-get install tcpdump)";
  return undefined;
}

function which(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${program}`).isFile) return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return false;
}

/** Preconditions of a netns test beyond root and iproute2. */
export interface NetnsTestOptions {
  /** Needs tcpdump. */
  readonly tcpdump?: boolean;
  /** Needs these files (absolute paths), e.g. a module another part of the project is still writing. */
  readonly files?: string[];
}

/**
 * Deno.test wrapper: with a skip reason, fails under CI=true and is ignored (reason printed once) otherwise.
 */
export function netnsTest(
  name: string,
  fn: () => Promise<void>,
  options: NetnsTestOptions = {},
): void {
  const reason = netnsSkipReason(options);
  const ci = Deno.env.get("CI") === "true";
  if (reason && !ci && !printed.has(reason)) {
    printed.add(reason);
    console.log(`skipping netns tests: ${reason}`);
  }
  Deno.test({
    name,
    ignore: reason !== undefined && !ci,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      if (reason) throw new Error(`CI=true but this netns test cannot run: ${reason}`);
      await fn();
    },
  });
}
const printed = new Set<string>();

/** Runs a command; throws with its stderr when it fails. Returns stdout. */
export async function sh(...args: string[]): Promise<string> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  if (!out.success) {
    throw new Error(`${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr).trim()}`);
  }
  return decoder.decode(out.stdout);
}

let serial = 0;

/** Namespaces and processes of one test; {@link cleanup} removes them all. */
export class Lab {
  readonly #namespaces: string[] = [];
  readonly #children: LineProcess[] = [];

  /** Creates a namespace with lo up and IPv6 DAD off (so addresses are usable at once). Returns its name. */
  async namespace(role: string): Promise<string> {
    const name = `jdn-${Deno.pid}-${++serial}-${role}`;
    await sh("ip", "netns", "add", name);
    this.#namespaces.push(name);
    await sh("ip", "-n", name, "link", "set", "lo", "up");
    for (const key of ["all", "default"]) {
      await sh("ip", "netns", "exec", name, "sysctl", "-qw", `net.ipv6.conf.${key}.accept_dad=0`);
    }
    return name;
  }

  /**
   * A veth link between two namespaces, both ends up, with the given addresses (CIDR; IPv6 with nodad) and
   * MTU (default 1500).
   */
  async link(
    a: { ns: string; name: string; addresses: string[] },
    b: { ns: string; name: string; addresses: string[] },
    mtu = 1500,
  ): Promise<void> {
    await sh(
      "ip",
      "link",
      "add",
      a.name,
      "netns",
      a.ns,
      "type",
      "veth",
      "peer",
      "name",
      b.name,
      "netns",
      b.ns,
    );
    for (const end of [a, b]) {
      for (const address of end.addresses) {
        const extra = address.includes(":") ? ["nodad"] : [];
        await sh("ip", "-n", end.ns, "address", "add", address, "dev", end.name, ...extra);
      }
      await sh("ip", "-n", end.ns, "link", "set", end.name, "mtu", String(mtu), "up");
    }
    // A veth end transmits only once linkwatch has seen the carrier and replaced the "noop" qdisc (which drops
    // everything); that happens asynchronously, up to a second later. Wait for it so the first datagram of a
    // test is not lost.
    for (const end of [a, b]) await this.#waitOperUp(end.ns, end.name);
  }

  async #waitOperUp(ns: string, name: string): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const line = await sh("ip", "-n", ns, "-o", "link", "show", "dev", name);
      if (line.includes("state UP") && !line.includes("qdisc noop")) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${ns}/${name} did not come up within 5 s`);
  }

  /** Index of an interface inside a namespace. */
  async ifindex(ns: string, name: string): Promise<number> {
    const out = await sh("ip", "-n", ns, "-o", "link", "show", "dev", name);
    return Number(out.split(":")[0]);
  }

  /** Starts a child inside `ns` and tracks it for cleanup. */
  spawn(ns: string, args: string[], stdin: "piped" | "null" = "piped"): LineProcess {
    const child = new LineProcess(["ip", "netns", "exec", ns, ...args], stdin);
    this.#children.push(child);
    return child;
  }

  /** `deno run` of a file inside `ns`, with the daemon's permission flags. */
  deno(ns: string, file: string, args: string[], flags: string[]): LineProcess {
    return this.spawn(ns, [DENO, "run", "--quiet", ...flags, file, ...args]);
  }

  /** Kills the children this lab started, then deletes its namespaces. */
  async cleanup(): Promise<void> {
    for (const child of this.#children) await child.stop();
    for (const ns of this.#namespaces.reverse()) await sh("ip", "netns", "del", ns);
  }
}

/** Longest wait for an expected line: a hang guard, not a timing assertion. */
const HANG_GUARD_MS = 20_000;

/** A child process whose stdout (and stderr) is read as lines. */
export class LineProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer?: WritableStreamDefaultWriter<Uint8Array>;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** Every stderr line so far. */
  readonly errors: string[] = [];
  #waiters: (() => void)[] = [];
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;
  readonly #drained: Promise<void>;

  constructor(command: string[], stdin: "piped" | "null") {
    this.#child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdin,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    if (stdin === "piped") this.#writer = this.#child.stdin.getWriter();
    this.#drained = Promise.all([
      this.#pump(this.#child.stdout, this.lines),
      this.#pump(this.#child.stderr, this.errors),
    ])
      .then(() => {});
    this.status = this.#child.status.then(async (status) => {
      await this.#drained;
      this.#exited = true;
      this.#wake();
      return status;
    });
  }

  /** Process id (for signals). */
  get pid(): number {
    return this.#child.pid;
  }

  async #pump(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      pending += text;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        into.push(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
      this.#wake();
    }
    if (pending) into.push(pending);
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits until `count` lines of stdout (or stderr with `stream: "stderr"`) match, then returns them.
   * Throws when the process exits first or after the hang guard.
   */
  async waitFor(
    match: (line: string) => boolean,
    count = 1,
    stream: "stdout" | "stderr" = "stdout",
  ): Promise<string[]> {
    const lines = stream === "stdout" ? this.lines : this.errors;
    const deadline = Date.now() + HANG_GUARD_MS;
    for (;;) {
      const found = lines.filter(match);
      if (found.length >= count) return found.slice(0, count);
      if (this.#exited) {
        throw new Error(
          `process exited before ${count} matching lines; stdout:\n${this.lines.join("\n")}\nstderr:\n${
            this.errors.join("\n")
          }`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no ${count} matching lines after ${HANG_GUARD_MS} ms; stdout:\n${
            this.lines.join("\n")
          }\nstderr:\n${this.errors.join("\n")}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, 1000);
      });
      clearTimeout(timer);
    }
  }

  /** Writes one line to stdin. */
  async write(line: string): Promise<void> {
    await this.#writer!.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Writes raw bytes to stdin. */
  async writeBytes(bytes: Uint8Array): Promise<void> {
    await this.#writer!.write(bytes);
  }

  /** Sends a signal, ignoring a process that already exited. */
  signal(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // TypeError: the child already exited
    }
  }

  /** Closes stdin, kills the child if still running and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
    if (this.#writer) {
      await this.#writer.close().catch((error) => {
        if (!(error instanceof TypeError) && !(error instanceof Deno.errors.BrokenPipe)) throw error;
      });
    }
    this.signal("SIGTERM");
    return await this.status;
  }
}

/** One packet seen by tcpdump -v -n. */
export interface CapturedPacket {
  /** IPv4 TTL or IPv6 hop limit. */
  readonly ttl: number;
  readonly destination: string;
  readonly port: number;
  /** UDP payload length. */
  readonly length: number;
}

/** tcpdump -v -n -t -l on one interface inside a namespace. */
export class Capture {
  private constructor(readonly process: LineProcess) {}

  /** Starts tcpdump for `filter` and waits until it is listening. */
  static async start(lab: Lab, ns: string, device: string, filter: string): Promise<Capture> {
    const process = lab.spawn(
      ns,
      ["tcpdump", "-i", device, "-n", "-t", "-v", "-l", "--immediate-mode", "-Q", "out", filter],
      "null",
    );
    await process.waitFor((l) => l.includes("listening on"), 1, "stderr");
    return new Capture(process);
  }

  /** Packets captured so far, decoded (IPv4 -v output spans two lines). */
  packets(): CapturedPacket[] {
    const out: CapturedPacket[] = [];
    let ttl: number | undefined;
    for (const line of this.process.lines) {
      const hop = line.match(/\b(?:ttl|hlim) (\d+)/);
      if (hop) ttl = Number(hop[1]);
      const flow = line.match(/ > ([0-9a-f.:]+)\.(\d+): .*UDP, length (\d+)/);
      if (flow && ttl !== undefined) {
        out.push({ ttl, destination: flow[1], port: Number(flow[2]), length: Number(flow[3]) });
        ttl = undefined;
      }
    }
    return out;
  }

  /** Waits until a packet to `destination` was captured; returns every packet before it. */
  async until(destination: string): Promise<CapturedPacket[]> {
    await this.process.waitFor(() => this.packets().some((p) => p.destination === destination));
    const all = this.packets();
    return all.slice(0, all.findIndex((p) => p.destination === destination));
  }
}
