/**
 * The kernel double's two pumps on threads of their own (`--kernel-double-threads`, used by the host relay
 * benchmark): a Worker per direction, each blocking in its one call, so that `/proc/PID/task/TID/stat` tells
 * the double's CPU apart from the daemon's (the pumps are the Worker threads at normal priority; the kernel
 * thread runs at SCHED_FIFO where the process may ask for it). With the default double (`tests/helpers/kernel_double.ts`) both
 * pumps run on the daemon's main thread, whose CPU then counts the double's work as the daemon's.
 *
 * - "in": reads frames from stdin and sends each into the socket pair (a blocking send: the pair's buffer is
 *   the back-pressure, as a netlink socket's receive buffer is);
 * - "out": waits on the pair's kernel end and writes what the kernel thread sent (its ACKs) to stdout as
 *   frames, until the wake pipe is written.
 *
 * Each says `{ done: true }` or `{ error }` when it ends.
 * @module
 */
import { FdSocket } from "../../ffi/fd_socket.ts";
import { FrameReader } from "./kernel_double.ts";

/** What a pump Worker is told at start. */
export interface PumpInit {
  /** Which direction. */
  readonly role: "in" | "out";
  /** The kernel's end of the socket pair. */
  readonly kernelFd: number;
  /** The double's wake pipe's read end (written at close). */
  readonly wakeFd: number;
}

/** What a pump Worker says. */
export type PumpMessage = { readonly done: true } | { readonly error: string };

function pumpIn(kernel: FdSocket): void {
  const frames = new FrameReader(true); // each frame is sent before the next read
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = Deno.stdin.readSync(buffer);
    if (n === null) return;
    for (const frame of frames.push(buffer.subarray(0, n))) {
      const errno = kernel.send(frame);
      if (errno !== 0) throw new Error(`send into the socket pair: errno ${errno}`);
    }
  }
}

function pumpOut(kernel: FdSocket): void {
  const scratch = new Uint8Array(4 + 65536);
  const received = scratch.subarray(4);
  const view = new DataView(scratch.buffer);
  while (kernel.wait() === "readable") {
    while (true) {
      const n = kernel.receiveInto(received);
      if (n === "empty" || n === "overrun") break;
      if (n > received.length) {
        throw new Error(`a ${n}-byte message from the daemon: larger than a netlink one`);
      }
      view.setUint32(0, n, false);
      const frame = scratch.subarray(0, 4 + n);
      for (let at = 0; at < frame.length;) at += Deno.stdout.writeSync(frame.subarray(at));
    }
  }
}

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<PumpInit>) => void) | null;
  postMessage(message: PumpMessage): void;
};
scope.onmessage = (event) => {
  scope.onmessage = null;
  const { role, kernelFd, wakeFd } = event.data;
  try {
    const kernel = new FdSocket(kernelFd, wakeFd);
    if (role === "in") pumpIn(kernel);
    else pumpOut(kernel);
    scope.postMessage({ done: true });
  } catch (error) {
    scope.postMessage({ error: String(error) });
  }
};
