/**
 * The real daemon (main.ts's program through `tests/helpers/joold_double.ts`) with the kernel double, as a child process (optionally inside a network
 * namespace): frames in on stdin as kernel multicasts, the daemon's netlink messages out on stdout, its log
 * on stderr. Shared by the netns tests, the host daemon tests and the benchmarks.
 * @module
 */
import { assertEquals } from "./assert.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "./daemon_process.ts";
import { multicastFrame } from "./kernel_messages.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";

/** genl commands the daemon sends (JOOLD_ADD, JOOLD_ACK). */
export { JNLOP_JOOLD_ACK as JOOLD_ACK, JNLOP_JOOLD_ADD as JOOLD_ADD } from "../../lib/jool/messages.ts";
import { JNLOP_JOOLD_ADD as JOOLD_ADD } from "../../lib/jool/messages.ts";

const concat = concatBytes;

/** Options of {@link Daemon}. */
export interface DaemonOptions {
  /** Network namespace to run in (`ip netns exec`), or undefined for this one. */
  readonly ns?: string;
  /** Working directory holding netsocket.json and modsocket.json. */
  readonly dir: string;
  /** Stats port (third argument), if any. */
  readonly statsPort?: number;
  /** Version the kernel double speaks. */
  readonly version?: string;
  /** Extra daemon arguments. */
  readonly args?: string[];
  /** Extra environment variables of the daemon process (e.g. systemd's NOTIFY_SOCKET). */
  readonly env?: Record<string, string>;
}

/** A netlink message the daemon sent to its double. */
export interface SentMessage {
  readonly cmd: number;
  /** Payload of the session container attribute (JOOLD_ADD only). */
  readonly container?: Uint8Array;
}

export function decodeSent(message: Uint8Array): SentMessage {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const cmd = message[16];
  if (cmd !== JOOLD_ADD || message.length < 52) return { cmd };
  const attrLength = view.getUint16(48, true);
  assertEquals(view.getUint16(50, true) & 0x3fff, 7, "JOOLD_ADD's attribute is SESSION_ENTRIES");
  return { cmd, container: message.slice(52, 48 + attrLength) };
}

// ---- the daemon process ------------------------------------------------------------------------------------

/** A running daemon with its kernel double. */
export class Daemon {
  readonly messages: SentMessage[] = [];
  readonly log: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<unknown>;
  #wake: (() => void)[] = [];

  readonly ns: string | undefined;
  readonly #version: number[];
  readonly statsPort: number | undefined;

  constructor(options: DaemonOptions) {
    this.ns = options.ns;
    this.#version = (options.version ?? "4.1.13").split(".").map(Number).concat([0, 0, 0, 0]).slice(0, 4);
    this.statsPort = options.statsPort;
    const daemon = [
      DENO,
      "run",
      "--quiet",
      ...DAEMON_FLAGS,
      `${ROOT}tests/helpers/joold_double.ts`,
      "netsocket.json",
      "modsocket.json",
      ...(options.statsPort === undefined ? [] : [String(options.statsPort)]),
      `--kernel-double=${options.version ?? "4.1.13"}`,
      ...(options.args ?? []),
    ];
    const command = options.ns === undefined ? daemon : ["ip", "netns", "exec", options.ns, ...daemon];
    this.#child = new Deno.Command(command[0], {
      args: command.slice(1),
      cwd: options.dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#done = Promise.all([this.#readFrames(), this.#readLog(), this.#child.status]);
  }

  async #readFrames(): Promise<void> {
    let pending: Uint8Array = new Uint8Array(0);
    for await (const chunk of this.#child.stdout) {
      pending = concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = new DataView(pending.buffer, pending.byteOffset).getUint32(0, false);
        if (pending.length < 4 + length) break;
        this.messages.push(decodeSent(pending.slice(4, 4 + length)));
        pending = pending.slice(4 + length);
      }
      this.#notify();
    }
  }

  async #readLog(): Promise<void> {
    let pending = "";
    for await (const text of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      this.log.push(...lines);
      this.#notify();
    }
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Waits for `condition`; fails with the daemon's log after the hang guard or if it exits. */
  async until(what: string, condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    let exited = false;
    this.#child.status.then(() => exited = true);
    while (!condition()) {
      if (exited || Date.now() > deadline) {
        throw new Error(
          `${this.ns ?? "daemon"}: ${exited ? "daemon exited" : "gave up"} waiting for ${what}; log:\n${
            this.log.join("\n")
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        timer = setTimeout(resolve, 500);
      });
      clearTimeout(timer);
    }
  }

  ready(): Promise<void> {
    return this.until("start-up", () => this.log.some((l) => l.includes("relaying instance")));
  }

  adds(): Uint8Array[] {
    return this.messages.filter((m) => m.cmd === JOOLD_ADD).map((m) => m.container!);
  }

  /** Resolves when the process ends. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Sends a signal to the daemon. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Injects a kernel multicast carrying `entries` (instance "default", the double's version). */
  async inject(entries: Uint8Array, iname = "default"): Promise<void> {
    await this.#stdin.write(multicastFrame(entries, iname, this.#version));
  }

  async stop(): Promise<void> {
    await this.#stdin.close().catch((error) => {
      if (!(error instanceof Deno.errors.BrokenPipe) && !(error instanceof TypeError)) throw error;
    });
    try {
      this.#child.kill("SIGTERM");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already exited
    }
    await this.#done;
  }
}

/** Asks a stats server (inside `ns`, or here) for a view: `json` parsed, anything else as text. */
export async function queryStats(ns: string | undefined, port: number): Promise<StatsJson> {
  return JSON.parse(await queryStatsText(ns, port, "json"));
}

/** The `json` view's shape. */
export interface StatsJson {
  counters: Record<string, number>;
  drops: Record<string, number>;
  kernelErrors: Record<string, number>;
  [key: string]: unknown;
}

/** Sends `request` to the stats port on 127.0.0.1 (inside `ns` when given) and returns the reply text. */
export async function queryStatsText(ns: string | undefined, port: number, request: string): Promise<string> {
  const script = `const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
await c.send(new TextEncoder().encode(${
    JSON.stringify(request)
  }), { transport: "udp", hostname: "127.0.0.1", port: ${port} });
const [d] = await c.receive(); await Deno.stdout.write(d); c.close();`;
  const command = [DENO, "eval", "--quiet", "--unstable-net", script];
  const full = ns === undefined ? command : ["ip", "netns", "exec", ns, ...command];
  const out = await new Deno.Command(full[0], { args: full.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`stats query failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}
