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

/** Splits a byte stream into frames; feed chunks in, take whole frames out. */
export class FrameReader {
  #pending: Uint8Array = new Uint8Array(0);

  /** Adds a chunk and returns every frame it completed. */
  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.#pending.length + chunk.length);
    joined.set(this.#pending);
    joined.set(chunk, this.#pending.length);
    const frames: Uint8Array[] = [];
    let at = 0;
    while (joined.length - at >= 4) {
      const length = new DataView(joined.buffer, at).getUint32(0, false);
      if (joined.length - at - 4 < length) break;
      frames.push(joined.slice(at + 4, at + 4 + length));
      at += 4 + length;
    }
    this.#pending = joined.slice(at);
    return frames;
  }

  /** Bytes of an incomplete frame still waiting. */
  get buffered(): number {
    return this.#pending.length;
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
  #closed = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #writeError: unknown;

  constructor(options: KernelDoubleOptions) {
    this.#reader = (options.stdin ?? Deno.stdin.readable).getReader();
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
    const frame = encodeFrame(message);
    if (this.#writer) {
      this.#writer.write(frame).catch((error) => this.#writeError = error);
    } else {
      for (let at = 0; at < frame.length;) at += Deno.stdout.writeSync(frame.subarray(at));
    }
  }

  async *receive(): AsyncIterable<Uint8Array> {
    while (true) {
      const next = this.#queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.cancel().catch(() => {/* stdin already gone: nothing left to release */});
    this.#writer?.close().catch(() => {/* stdout already gone: nothing left to flush */});
    this.#wake?.();
  }

  #deliver(datagram: Uint8Array): void {
    this.#queue.push(datagram);
    this.#wake?.();
  }

  async #pump(): Promise<void> {
    const frames = new FrameReader();
    while (!this.#closed) {
      const { value, done } = await this.#reader.read();
      if (done) return;
      for (const frame of frames.push(value)) this.#deliver(frame);
    }
  }
}
