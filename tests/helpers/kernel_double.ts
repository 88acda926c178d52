/**
 * The kernel double: a stand-in for Jool's netlink socket, so tests and benchmarks drive the real daemon —
 * kernel thread, kernel channel, relay — without Jool. A connected socket pair replaces the netlink socket: the
 * kernel thread receives on one end exactly as on netlink, and the double plays the kernel on the other:
 *
 * - a frame is a u32 big-endian length followed by one whole netlink datagram, both ways;
 * - frames read from stdin are sent into the socket pair as if the kernel had multicast them;
 * - every message the daemon sends is written to stdout as a frame (the ACKs the kernel thread sends, read from
 *   the pair; the main thread's requests, written at once), except the start-up probe (GLOBAL_FOREACH), which
 *   the double answers itself: the instance exists and ss-enabled is on;
 * - the pool4 listing (`"check pool4"`) goes through a query socket of its own, answered in memory from the
 *   table given to {@link doubleKernel} (`tests/helpers/pool4_double.ts`).
 *
 * `tests/helpers/joold_double.ts` is the daemon's entry point with this double (`--kernel-double=VERSION`).
 * @module
 */
import { HOST_LITTLE_ENDIAN, NLMSG_HDRLEN, readNetlinkHeader, u8, viewOf } from "../../lib/jool/netlink.ts";
import { GENL_HDRLEN, NLMSG_ERROR, writeGenlHeader, writeNetlinkHeader } from "../../lib/jool/netlink.ts";
import { JOOL_HDRLEN, type JoolVersion, packVersion, readJoolHeader } from "../../lib/jool/header.ts";
import {
  commandOf,
  JNLAG_JOOLD_ENABLED,
  JNLOP_GLOBAL_FOREACH,
  JOOL_ATTRS_OFFSET,
} from "../../lib/jool/messages.ts";
import { encodeAttributes } from "../../lib/jool/netlink.ts";
import { parseJoolVersion } from "../../lib/kernel/version.ts";
import { startKernelThread } from "../../lib/kernel/thread_transport.ts";
import { kernelThreadModule } from "../../lib/kernel/thread_module.ts";
import type { KernelAccess, KernelTransport } from "../../lib/kernel/transport.ts";
import type { Logger } from "../../lib/logger.ts";
import type { Pool4Entry } from "../../lib/jool/pool4.ts";
import { Pool4Double } from "./pool4_double.ts";
import type { PumpInit, PumpMessage } from "./kernel_double_pump.ts";
import {
  closeFd,
  closeWakePipe,
  EAGAIN_ERRNO,
  FdSocket,
  openSocketPair,
  openWakePipe,
  wake,
} from "../../ffi/fd_socket.ts";

/** Generic Netlink family id the double reports. */
export const DOUBLE_FAMILY_ID = 0x22;

/** Options of {@link openKernelDouble}. */
export interface KernelDoubleOptions {
  /** Jool version the double plays (the kernel thread prepares its ACK for it). */
  version: string;
  /** The configured instance. */
  instance?: string;
  /** Frames in (default Deno.stdin). */
  stdin?: ReadableStream<Uint8Array>;
  /** Frames out (default Deno.stdout, written synchronously). */
  stdout?: WritableStream<Uint8Array>;
  /** The module the kernel thread runs (default {@link THREAD_MODULE}). */
  threadModule?: string | URL;
  /** Where the kernel thread's start-up facts go. */
  log?: Logger;
  /**
   * Run the pumps on threads of their own (`tests/helpers/kernel_double_pump.ts`; the process's stdin and
   * stdout only), so that a benchmark can tell the double's CPU from the daemon's.
   */
  threads?: boolean;
}

/** The module the kernel thread's Worker runs from the sources (`lib/kernel/thread_module.ts`). */
export const THREAD_MODULE: string | URL = kernelThreadModule();

/** Frames one netlink datagram: u32 BE length + the bytes. */
export function encodeFrame(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, false);
  out.set(bytes, 4);
  return out;
}

/**
 * Splits a byte stream into frames; feed chunks in, take whole frames out. Each byte is copied once: a frame
 * whole in its chunk is sliced out of it, a frame split across chunks is filled into its own buffer as they
 * come (never re-copying what is already pending).
 */
export class FrameReader {
  /**
   * `views`: a frame whole in its chunk comes out as a view of the chunk, not a copy — for the double's pumps,
   * which send each frame before they read into the chunk's buffer again. Why: a buffer per frame in the
   * daemon's process (a backing store each, ~40 000 a second in the host relay) is the double's garbage, not
   * the daemon's, and it was counted in A's RssAnon and its V8 helpers' CPU (BENCHMARKS.md "Host relay, A's
   * own CPU and memory").
   */
  constructor(private readonly views = false) {}
  readonly #header = new Uint8Array(4);
  #headerFill = 0;
  #frame: Uint8Array | undefined;
  #frameFill = 0;

  /** Adds a chunk and returns every frame it completed. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === undefined) {
        if (this.#headerFill === 0 && chunk.length - at >= 4) {
          const length = view.getUint32(at, false);
          if (chunk.length - at - 4 >= length) {
            const from = at + 4;
            frames.push(this.views ? chunk.subarray(from, from + length) : chunk.slice(from, from + length));
            at += 4 + length;
            continue;
          }
        }
        const take = Math.min(4 - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < 4) break;
        this.#headerFill = 0;
        this.#frame = new Uint8Array(new DataView(this.#header.buffer).getUint32(0, false));
        this.#frameFill = 0;
      }
      const take = Math.min(this.#frame.length - this.#frameFill, chunk.length - at);
      this.#frame.set(chunk.subarray(at, at + take), this.#frameFill);
      this.#frameFill += take;
      at += take;
      if (this.#frameFill === this.#frame.length) {
        frames.push(this.#frame);
        this.#frame = undefined;
      }
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting (its length prefix included). */
  get buffered(): number {
    return this.#frame === undefined ? this.#headerFill : 4 + this.#frameFill;
  }
}

/**
 * The reply of a Jool kernel to GLOBAL_FOREACH for an existing NAT64 instance with ss-enabled on: unicast to
 * the requester (pid, seq), genl cmd 0 version 2, a copy of the request's Jool header, globals as top-level
 * attributes (only ss-enabled here).
 */
export function globalsReply(request: Uint8Array, familyId: number, ssEnabled = true): Uint8Array {
  const req = readNetlinkHeader(request);
  const attributes = encodeAttributes([{ type: JNLAG_JOOLD_ENABLED, payload: u8(ssEnabled ? 1 : 0) }]);
  const out = new Uint8Array(JOOL_ATTRS_OFFSET + attributes.length);
  writeNetlinkHeader(out, { length: out.length, type: familyId, flags: 0, seq: req.seq, pid: req.pid });
  writeGenlHeader(out, NLMSG_HDRLEN, { cmd: 0, version: 2, reserved: 0 });
  out.set(request.subarray(NLMSG_HDRLEN + GENL_HDRLEN, JOOL_ATTRS_OFFSET), NLMSG_HDRLEN + GENL_HDRLEN);
  out.set(attributes, JOOL_ATTRS_OFFSET);
  return out;
}

/** An NLMSG_ERROR for `request` with a positive errno, as genetlink sends for malformed requests. */
function netlinkError(request: Uint8Array, errno: number): Uint8Array {
  const req = readNetlinkHeader(request);
  const out = new Uint8Array(NLMSG_HDRLEN + 4 + NLMSG_HDRLEN);
  writeNetlinkHeader(out, { length: out.length, type: NLMSG_ERROR, flags: 0, seq: req.seq, pid: req.pid });
  viewOf(out).setInt32(NLMSG_HDRLEN, -errno, HOST_LITTLE_ENDIAN);
  out.set(request.subarray(0, NLMSG_HDRLEN), NLMSG_HDRLEN + 4);
  return out;
}

/**
 * The {@link KernelAccess} of the double: version `version`, frames on stdin/stdout; its pool4 listing answers
 * from `pool4` (empty by default), two entries per reply so that paging is exercised; `threads`: see
 * {@link KernelDoubleOptions.threads}.
 */
export function doubleKernel(
  version: string,
  threadModule: string | URL = THREAD_MODULE,
  pool4: Pool4Entry[] = [],
  threads = false,
): KernelAccess {
  return {
    readVersion: () => parseJoolVersion(version),
    open: (instance, _version, log) => openKernelDouble({ version, instance, threadModule, log, threads }),
    openQuerySocket: () => new Pool4Double(pool4, { pageSize: 2 }),
  };
}

/** Opens the kernel double and starts the real kernel thread on its socket pair. */
export async function openKernelDouble(options: KernelDoubleOptions): Promise<KernelTransport> {
  const version: JoolVersion | undefined = parseJoolVersion(options.version);
  const double = new KernelDouble(options);
  try {
    return await startKernelThread({
      socket: double,
      instance: options.instance ?? "default",
      version: version ? packVersion(version) : 0,
      threadModule: options.threadModule ?? THREAD_MODULE,
      log: options.log,
    });
  } catch (error) {
    double.close();
    throw error;
  }
}

/** The kernel's side of the socket pair, and the daemon's end as the kernel thread's socket. */
class KernelDouble {
  readonly familyId = DOUBLE_FAMILY_ID;
  readonly localPort = Deno.pid;
  /** The daemon's end: the kernel thread receives on it. */
  readonly fd: number;
  /** The kernel's end. */
  readonly #kernel: FdSocket;
  readonly #pipe = openWakePipe();
  #closed = false;
  /** The given stdin stream's reader, or undefined to read Deno.stdin into {@link #buffer}. */
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buffer: Uint8Array | undefined;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #writeError: unknown;
  #scratch = new Uint8Array(4096);
  /** The pump threads, when {@link KernelDoubleOptions.threads}. */
  #pumps: Worker[] | undefined;

  constructor(options: KernelDoubleOptions) {
    const [daemonEnd, kernelEnd] = openSocketPair();
    this.fd = daemonEnd;
    this.#kernel = new FdSocket(kernelEnd, this.#pipe.readFd);
    this.#reader = options.stdin?.getReader();
    this.#writer = options.stdout?.getWriter();
    if (options.threads) {
      if (options.stdin || options.stdout) throw new Error("kernel double: threads pump stdin/stdout only");
      this.#pumps = this.#startPumps(kernelEnd);
      return;
    }
    this.#pumpIn().catch((error) => {
      // A broken stdin ends the injected traffic; the daemon keeps waiting for close().
      if (!this.#closed) console.error(`kernel double: stdin: ${error}`);
    });
    this.#pumpOut().catch((error) => {
      if (!this.#closed) console.error(`kernel double: ACKs: ${error}`);
    });
  }

  /** A request from the daemon's main thread (JOOLD_ADD, the probe, ACKs decided after parsing). */
  send(message: Uint8Array): void {
    if (this.#closed) throw new Error("the kernel double is closed");
    this.#fromDaemon(message);
  }

  /** Called once the kernel thread has stopped: closes both ends and stops the pumps. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    wake(this.#pipe);
    if (this.#pumps) {
      // The out pump ends at the wake and the pair's kernel end is released then (#startPumps); the in pump
      // may sit in a blocking read of stdin, which ends with the process.
      closeFd(this.fd);
      return;
    }
    if (this.#reader) this.#reader.cancel().catch(() => {/* stdin already gone: nothing left to release */});
    else {
      try {
        Deno.stdin.close();
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) throw error; // already closed
      }
    }
    this.#writer?.close().catch(() => {/* stdout already gone: nothing left to flush */});
    closeFd(this.fd);
    // The out pump releases the kernel's end and the pipe once its poll has returned.
  }

  #fromDaemon(message: Uint8Array): void {
    if (this.#writeError) throw new Error(`kernel double: stdout: ${this.#writeError}`);
    if (message.length < NLMSG_HDRLEN + GENL_HDRLEN + JOOL_HDRLEN) {
      this.#deliver(netlinkError(message, 22));
      return;
    }
    if (commandOf(message) === JNLOP_GLOBAL_FOREACH) {
      const header = readJoolHeader(message, NLMSG_HDRLEN + GENL_HDRLEN);
      this.#deliver(header.ok ? globalsReply(message, this.familyId) : netlinkError(message, 22));
      return;
    }
    if (this.#writer) {
      this.#writer.write(encodeFrame(message)).catch((error) => this.#writeError = error);
      return;
    }
    // Written synchronously: one scratch buffer serves every frame (no per-message garbage).
    if (this.#scratch.length < 4 + message.length) this.#scratch = new Uint8Array(2 * (4 + message.length));
    const frame = this.#scratch.subarray(0, 4 + message.length);
    new DataView(frame.buffer).setUint32(0, message.length, false);
    frame.set(message, 4);
    for (let at = 0; at < frame.length;) at += Deno.stdout.writeSync(frame.subarray(at));
  }

  /** Sends `datagram` to the daemon as the kernel would; waits while the pair's buffer is full. */
  async #deliverWhenRoom(datagram: Uint8Array): Promise<void> {
    while (!this.#closed) {
      const errno = this.#kernel.send(datagram, true);
      if (errno === 0) return;
      if (errno !== EAGAIN_ERRNO) throw new Error(`send into the socket pair: errno ${errno}`);
      await new Promise((resolve) => setTimeout(resolve, 1)); // the kernel thread is reading: room soon
    }
  }

  #deliver(datagram: Uint8Array): void {
    this.#deliverWhenRoom(datagram).catch((error) => {
      if (!this.#closed) console.error(`kernel double: ${error}`);
    });
  }

  /** The next chunk of stdin (valid until the next read), or null at its end. */
  async #read(): Promise<Uint8Array | null> {
    if (this.#reader) {
      const { value, done } = await this.#reader.read();
      return done ? null : value;
    }
    this.#buffer ??= new Uint8Array(64 * 1024);
    const n = await Deno.stdin.read(this.#buffer);
    return n === null ? null : this.#buffer.subarray(0, n);
  }

  /** Starts the two pump threads (`tests/helpers/kernel_double_pump.ts`) on the pair's kernel end. */
  #startPumps(kernelEnd: number): Worker[] {
    const workers = (["in", "out"] as const).map((role) => {
      const worker = new Worker(new URL("./kernel_double_pump.ts", import.meta.url), { type: "module" });
      worker.onmessage = (event: MessageEvent<PumpMessage>) => {
        const m = event.data;
        if ("error" in m) {
          if (!this.#closed) console.error(`kernel double: ${role} pump: ${m.error}`);
        } else if (role === "out") {
          closeFd(kernelEnd);
          closeWakePipe(this.#pipe);
          for (const w of workers) w.terminate();
        }
      };
      const init: PumpInit = { role, kernelFd: kernelEnd, wakeFd: this.#pipe.readFd };
      worker.postMessage(init);
      return worker;
    });
    return workers;
  }

  /** stdin → the socket pair. The pair's buffer bounds what waits, like a netlink socket's receive buffer. */
  async #pumpIn(): Promise<void> {
    const frames = new FrameReader(true); // each frame is delivered before the next read
    while (!this.#closed) {
      const chunk = await this.#read();
      if (chunk === null) return;
      for (const frame of frames.push(chunk)) await this.#deliverWhenRoom(frame);
    }
  }

  /** What the kernel thread sends (its ACKs) → stdout. */
  async #pumpOut(): Promise<void> {
    try {
      while (!this.#closed && await this.#kernel.waitAsync() === "readable") {
        while (!this.#closed) {
          const read = this.#kernel.receive();
          if (read === "empty" || read === "overrun") break;
          this.#fromDaemon(read);
        }
      }
    } finally {
      closeFd(this.#kernel.fd);
      closeWakePipe(this.#pipe);
    }
  }
}
