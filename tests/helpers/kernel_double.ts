/**
 * TEST ONLY: a kernel double selected by `--kernel-double=VERSION`. It replaces the netlink socket with
 * frames on stdin/stdout, so tests drive the real daemon without Jool:
 *
 * - a frame is a u32 big-endian length followed by one whole netlink datagram, both ways;
 * - frames read from stdin are delivered by receive() as if the kernel had multicast them;
 * - every message the daemon sends is written to stdout as a frame, except the start-up probe
 *   (GLOBAL_FOREACH), which the double answers itself: the instance exists and ss-enabled is on.
 * @module
 */
import { HOST_LITTLE_ENDIAN, NLMSG_HDRLEN, readNetlinkHeader, u8, viewOf } from "../jool/netlink.ts";
import { GENL_HDRLEN, NLMSG_ERROR, writeGenlHeader, writeNetlinkHeader } from "../jool/netlink.ts";
import { JOOL_HDRLEN, readJoolHeader } from "../jool/header.ts";
import { commandOf, JNLAG_JOOLD_ENABLED, JNLOP_GLOBAL_FOREACH, JOOL_ATTRS_OFFSET } from "../jool/messages.ts";
import { encodeAttributes } from "../jool/netlink.ts";
import type { KernelTransport } from "./transport.ts";

/** Generic Netlink family id the double reports. */
export const DOUBLE_FAMILY_ID = 0x22;

/**
 * Frames read from stdin but not yet received, at most (about): past it the double stops reading stdin until
 * receive() has taken half of them, so the writer blocks on the full pipe. A netlink socket's receive buffer
 * is bounded the same way; without the bound, a flood on stdin grows the daemon's heap without limit.
 */
export const DOUBLE_QUEUE_FRAMES = 256;

/** Options of {@link openKernelDouble}. */
export interface KernelDoubleOptions {
  /** Jool version the double plays (informational: tests put it in the multicasts they inject). */
  version: string;
  /** Frames in (default Deno.stdin). */
  stdin?: ReadableStream<Uint8Array>;
  /** Frames out (default Deno.stdout, written synchronously). */
  stdout?: WritableStream<Uint8Array>;
}

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
            frames.push(chunk.slice(at + 4, at + 4 + length));
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

/** Opens the kernel double. */
export function openKernelDouble(options: KernelDoubleOptions): KernelTransport {
  return new KernelDouble(options);
}

class KernelDouble implements KernelTransport {
  readonly familyId = DOUBLE_FAMILY_ID;
  readonly localPort = Deno.pid;
  readonly #queue: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  /** Resumes the stdin pump paused on a full queue. */
  #resume: (() => void) | undefined;
  #closed = false;
  /** The given stdin stream's reader, or undefined to read Deno.stdin into {@link #buffer}. */
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Like the netlink socket's: one receive buffer, frames copied out of it (no 64-KiB chunk per read). */
  #buffer: Uint8Array | undefined;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #writeError: unknown;
  #scratch = new Uint8Array(4096);

  constructor(options: KernelDoubleOptions) {
    this.#reader = options.stdin?.getReader();
    this.#writer = options.stdout?.getWriter();
    this.#pump().catch((error) => {
      // A broken stdin ends the injected traffic; receive() keeps waiting for close().
      if (!this.#closed) console.error(`kernel double: stdin: ${error}`);
    });
  }

  send(message: Uint8Array): void {
    if (this.#closed) throw new Error("the kernel double is closed");
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

  async *receive(onRead?: (datagram: Uint8Array) => void): AsyncIterable<Uint8Array> {
    while (true) {
      const next = this.#queue.shift();
      if (next) {
        if (this.#resume && this.#queue.length <= DOUBLE_QUEUE_FRAMES / 2) this.#resume();
        onRead?.(next);
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  /** Frames are handed over without an event-loop turn (a promise resolved at delivery): never. */
  hasPending(): boolean {
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reader) this.#reader.cancel().catch(() => {/* stdin already gone: nothing left to release */});
    else {
      try {
        Deno.stdin.close();
      } catch (error) {
        if (!(error instanceof Deno.errors.BadResource)) throw error; // already closed
      }
    }
    this.#writer?.close().catch(() => {/* stdout already gone: nothing left to flush */});
    this.#wake?.();
    this.#resume?.();
  }

  #deliver(datagram: Uint8Array): void {
    this.#queue.push(datagram);
    this.#wake?.();
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

  async #pump(): Promise<void> {
    const frames = new FrameReader();
    while (!this.#closed) {
      const chunk = await this.#read();
      if (chunk === null) return;
      for (const frame of frames.push(chunk)) this.#deliver(frame);
      if (this.#queue.length >= DOUBLE_QUEUE_FRAMES) {
        await new Promise<void>((resolve) => this.#resume = resolve);
        this.#resume = undefined;
      }
    }
  }
}
