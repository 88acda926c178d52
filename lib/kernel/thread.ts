/**
 * The kernel thread: a Worker that owns the kernel socket's receive side and does nothing else. It waits in a
 * blocking poll over {kernel socket, wake pipe}, reads every datagram waiting, ACKs each plain batch of our
 * instance at once (the ACK rule, `lib/kernel/ack_rule.ts`), and hands the datagrams to the main thread, which
 * parses, counts and relays them (`lib/kernel/thread_transport.ts`).
 *
 * Why a thread: on one JavaScript thread an ACK waits behind whatever else runs — datagram sends, JOOLD_ADDs,
 * first calls, the hop from a poll thread to the event loop, the collector — and a 4.1.9 kernel loses sessions
 * for every millisecond of it (docs/protocol.md §2). A blocking call here blocks only this thread, like a C
 * daemon's thread parked in recv().
 *
 * The worker runs the program's own entry module (main.ts, or the bundle, or the compiled binary), which calls
 * {@link kernelThreadMain} when {@link isKernelThread} says it is this worker: so every one-file form carries
 * the thread's code without a second file.
 * @module
 */
import { errorMessage } from "../errors.ts";
import { DEFAULT_REQUEST_VERSION, packVersion } from "../jool/header.ts";
import { instanceKey } from "../jool/ack_check.ts";
import { encodeJooldAdd } from "../jool/messages.ts";
import { NLMSG_HDRLEN, NLMSG_OVERRUN, writeNetlinkHeader } from "../jool/netlink.ts";
import { ENOTSOCK, FdSocket, FdSocketError } from "../../ffi/fd_socket.ts";
import { raiseCallingThread } from "../../ffi/thread_priority.ts";
import { AckGate, ackOnArrival, AckWriter } from "./ack_rule.ts";

/** The Worker's name: how the entry module knows it runs as the kernel thread. */
export const KERNEL_THREAD_NAME = "joold-kernel-thread";

/** Datagrams read in one go before they are handed over (bounds one message to the main thread). */
const MAX_DRAIN = 64;
/** Bigger than any netlink datagram the Jool kernel sends (about 4 KiB at most). */
const RECEIVE_BUFFER = 65536;
/** Rounds of the thread's own warm-up (pure code only: nothing is sent). */
const WARM_UP_ROUNDS = 2000;

/** What the main thread tells the kernel thread when it starts it. */
export interface KernelThreadInit {
  /** The kernel socket's descriptor. */
  readonly fd: number;
  /** The wake pipe's read end: readable = stop. */
  readonly wakeFd: number;
  /** The Jool family id (the ACKs' nlmsg_type, and what a batch must carry). */
  readonly familyId: number;
  /** Our netlink port (the ACKs' nlmsg_pid). */
  readonly localPort: number;
  /** The configured instance. */
  readonly instance: string;
  /** Packed version of the local kernel when known (0 otherwise): its ACK template is built before the first batch. */
  readonly version: number;
  /** The {@link AckGate}'s shared flag. */
  readonly gate: Int32Array;
}

/** What the kernel thread tells the main thread. */
export type KernelThreadMessage =
  /**
   * Started and warmed up: batches are ACKed on arrival from now on. `priorityErrno`: 0 when the thread runs at
   * real-time priority (SCHED_FIFO 1), else why not (errno).
   */
  | { readonly kind: "ready"; readonly priorityErrno: number }
  /**
   * Datagrams read in one go, in order; `acked[i]` is 1 when datagram i was ACKed on arrival. An ACK the thread
   * could not send leaves it 0: the kernel channel then ACKs after parsing, and counts a second failure.
   */
  | {
    readonly kind: "datagrams";
    readonly datagrams: Uint8Array[];
    readonly acked: Uint8Array;
  }
  /** Woken by the pipe: the loop has ended and the thread closes. */
  | { readonly kind: "stopped" }
  /** The loop failed; the thread closes. */
  | { readonly kind: "failed"; readonly message: string };

/** Whether this code runs as the kernel thread (the Worker named {@link KERNEL_THREAD_NAME}). */
export function isKernelThread(): boolean {
  return (globalThis as { name?: unknown }).name === KERNEL_THREAD_NAME;
}

/** The kernel thread's entry point: waits for its {@link KernelThreadInit}, then runs until woken. */
export function kernelThreadMain(): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<KernelThreadInit>) => void) | null;
    postMessage(message: KernelThreadMessage, transfer?: Transferable[]): void;
    close(): void;
  };
  scope.onmessage = (event) => {
    scope.onmessage = null;
    const post = (message: KernelThreadMessage, transfer?: Transferable[]) =>
      scope.postMessage(message, transfer);
    try {
      runKernelLoop(event.data, post);
      post({ kind: "stopped" });
    } catch (error) {
      post({
        kind: "failed",
        message: errorMessage(error).split("\n")[0],
      });
    }
    scope.close();
  };
}

/**
 * The loop: wait, drain, ACK on arrival, hand over; returns when the wake pipe is written. Blocks the calling
 * thread: call it only on the kernel thread.
 */
export function runKernelLoop(
  init: KernelThreadInit,
  post: (message: KernelThreadMessage, transfer?: Transferable[]) => void,
): void {
  const socket = new FdSocket(init.fd, init.wakeFd, RECEIVE_BUFFER);
  const gate = new AckGate(init.gate);
  const key = instanceKey(init.instance);
  // Its own sequence numbers, far from the main thread's: the kernel checks none, but a capture stays readable.
  const writer = new AckWriter(init.familyId, init.localPort, init.instance, 0x40000000);
  warmUp(writer, init);
  writer.prepare(init.version || packVersion(DEFAULT_REQUEST_VERSION));
  // Woken by a batch, run at once: on two busy CPUs a normal-priority thread waited 18 ms for one (VM lab,
  // Jool 4.1.9), long enough for the kernel to lose sessions (ffi/thread_priority.ts).
  const priorityErrno = raiseCallingThread();
  post({ kind: "ready", priorityErrno });
  while (socket.wait() === "readable") {
    const datagrams: Uint8Array<ArrayBuffer>[] = [];
    const acked = new Uint8Array(MAX_DRAIN);
    while (datagrams.length < MAX_DRAIN) {
      const size = socket.receiveInPlace();
      if (size === "empty") break;
      if (size === "overrun") {
        datagrams.push(overrunMessage());
        continue;
      }
      // Checked and ACKed in the receive buffer, before the copy: nothing allocates (and so nothing can start
      // a collection) between the recv and the ACK.
      const version = ackOnArrival(socket.buffer, init.familyId, key, size);
      if (version !== 0 && !gate.held) {
        if (socket.send(writer.ack(version)) === 0) acked[datagrams.length] = 1;
      }
      datagrams.push(socket.buffer.slice(0, size));
    }
    if (datagrams.length === 0) continue; // woken by a zero-length datagram: nothing to hand over
    post(
      { kind: "datagrams", datagrams, acked: acked.subarray(0, datagrams.length) },
      datagrams.map((d) => d.buffer),
    );
  }
}

/**
 * Compiles the per-batch path before the first batch: a fresh isolate runs each function in its interpreter
 * first, and a 4.1.9 kernel loses sessions while the first ACK waits (measured: 17 ms of a first batch went to
 * cold code under emulation). Pure code only: nothing is read or sent.
 */
function warmUp(writer: AckWriter, init: KernelThreadInit): void {
  const sample = encodeJooldAdd({
    familyId: init.familyId,
    pid: 0,
    seq: 0,
    version: DEFAULT_REQUEST_VERSION,
    instance: init.instance,
  }, new Uint8Array(4 * 10));
  const key = instanceKey(init.instance);
  for (let i = 0; i < WARM_UP_ROUNDS; i++) {
    const version = ackOnArrival(sample, init.familyId, key, sample.length);
    if (version !== 0) writer.ack(version);
  }
  // The first recv and send through FFI cost milliseconds under emulation: make them on the wake pipe, which is
  // no socket (ENOTSOCK), so nothing is read or sent.
  const probe = new FdSocket(init.wakeFd, init.wakeFd, 16);
  try {
    probe.receiveInPlace();
  } catch (error) {
    if (!(error instanceof FdSocketError && error.errno === ENOTSOCK)) throw error;
  }
  probe.send(sample);
}

/** What the main thread receives for a receive-buffer overflow: a 16-byte NLMSG_OVERRUN, counted there. */
function overrunMessage(): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(NLMSG_HDRLEN);
  writeNetlinkHeader(out, { length: NLMSG_HDRLEN, type: NLMSG_OVERRUN, flags: 0, seq: 0, pid: 0 });
  return out;
}
