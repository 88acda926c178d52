/**
 * The kernel thread: a Worker that owns the kernel socket's receive side and does nothing else. It waits in a
 * blocking poll over {kernel socket, wake pipe}, reads every datagram waiting, ACKs each plain batch of our
 * instance at once (the ACK rule, `lib/kernel/ack_rule.ts`), and hands the datagrams to the main thread through
 * a ring in shared memory (`lib/kernel/handoff.ts`); the main thread parses, counts and relays them
 * (`lib/kernel/thread_transport.ts`). It runs at real-time priority and warms its own loop before it says ready.
 *
 * Why a thread: on one JavaScript thread an ACK waits behind whatever else runs — datagram sends, JOOLD_ADDs,
 * first calls, the hop from a poll thread to the event loop, the collector — and a 4.1.9 kernel loses sessions
 * for every millisecond of it (docs/protocol.md §2). A blocking call here blocks only this thread, like a C
 * daemon's thread parked in recv().
 *
 * The worker runs a module of its own, `lib/kernel/thread_main.ts`, which calls {@link kernelThreadMain}
 * (`lib/kernel/thread_module.ts` says how each one-file form carries it).
 * @module
 */
import { errorMessage } from "../errors.ts";
import { DEFAULT_REQUEST_VERSION, packVersion } from "../jool/header.ts";
import { type InstanceKey, instanceKey } from "../jool/ack_check.ts";
import { encodeJooldAdd } from "../jool/messages.ts";
import { NLMSG_HDRLEN, NLMSG_OVERRUN, writeNetlinkHeader } from "../jool/netlink.ts";
import { closeFd, closeWakePipe, FdSocket, openSocketPair, openWakePipe } from "../../ffi/fd_socket.ts";
import {
  callingThreadCpus,
  cpuMask,
  cpusOf,
  raiseCallingThread,
  setCallingThreadCpus,
} from "../../ffi/thread_priority.ts";
import { AckGate, ackOnArrival, AckWriter } from "./ack_rule.ts";
import { createHandoff, type HandoffMemory, HandoffReader, HandoffWriter } from "./handoff.ts";

/** The Worker's name (the thread's name in a debugger or a profile). */
export const KERNEL_THREAD_NAME = "joold-kernel-thread";

/** Datagrams read in one go before they are handed over (bounds one message to the main thread). */
const MAX_DRAIN = 64;
/** Bigger than any netlink datagram the Jool kernel sends (about 4 KiB at most). */
const RECEIVE_BUFFER = 65536;
/** Synthetic batches of the thread's own warm-up, one wake each ({@link warmUp}). */
const WARM_UP_ROUNDS = 2000;
/** Batches in the socket pair at a time during the warm-up (their ACKs fit its buffer; they fit the ring). */
const WARM_UP_CHUNK = 32;
/** Slots of the warm-up's own hand-off: one chunk fits. */
const WARM_UP_SLOTS = 2 * WARM_UP_CHUNK;
/**
 * `wakes` of the real loop: no bound. A small integer, not `Infinity`: the warm-up compiles {@link serve} for
 * small-integer counts, and a first real call with a non-integer threw that code away (V8 "not a Smi" deopt), so
 * the loop ran unoptimized through the first real batches and recompiled during them.
 */
const FOREVER = -1;
/** How long the thread waits for a free slot before it looks at the wake pipe again. */
const ROOM_WAIT_MS = 10;

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
  /** Where the datagrams go (`lib/kernel/handoff.ts`). */
  readonly handoff: HandoffMemory;
  /** The doorbell: this thread's end of a socket pair; a byte sent on it wakes the main thread. */
  readonly doorbellFd: number;
}

/** What the kernel thread tells the main thread. */
export type KernelThreadMessage =
  /**
   * Started and warmed up: batches are ACKed on arrival from now on. `priorityErrno`: 0 when the thread runs at
   * real-time priority (SCHED_FIFO 1), else why not (errno). `cpu`: the one CPU the thread is now bound to, which
   * the main thread is to keep off, or -1 when it is not bound (one CPU allowed, or the call refused).
   */
  | { readonly kind: "ready"; readonly priorityErrno: number; readonly cpu: number }
  /**
   * The thread's first message, sent before its warm-up and ignored: a first `postMessage` sets up what it needs
   * in the thread's isolate, and that changes prototypes the warmed code depends on. Sent after the warm-up (the
   * "ready" below), it made V8 throw away every warmed function of the per-batch path, so the first real
   * batches ran unoptimized and were recompiled mid-burst (seen with `--trace-deopt`: "dependent prototype chain
   * changed").
   */
  | { readonly kind: "starting" }
  /** Woken by the pipe: the loop has ended and the thread closes. */
  | { readonly kind: "stopped" }
  /** The loop failed; the thread closes. */
  | { readonly kind: "failed"; readonly message: string };

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

/** Tells the main thread that datagrams wait. */
type Doorbell = () => void;

/** One byte: what the doorbell sends (its content does not matter). */
const BELL = new Uint8Array(1);

/** What the loop needs besides its socket. */
interface LoopContext {
  readonly familyId: number;
  readonly key: InstanceKey;
  readonly gate: AckGate;
  readonly writer: AckWriter;
}

/**
 * The kernel thread's life: warm up, raise its priority, say ready, then wait, drain, ACK on arrival and hand
 * over until the wake pipe is written. Blocks the calling thread: call it only on the kernel thread.
 */
function runKernelLoop(init: KernelThreadInit, post: (message: KernelThreadMessage) => void): void {
  const context: LoopContext = {
    familyId: init.familyId,
    key: instanceKey(init.instance),
    gate: new AckGate(init.gate),
    // Its own sequence numbers, far from the main thread's: the kernel checks none, but a capture stays readable.
    writer: new AckWriter(init.familyId, init.localPort, init.instance, 0x40000000),
  };
  // Every page of the ring resident before the first batch (2 MiB, for good): a first touch in a burst is a page
  // fault, which waits for the process's memory-map lock, and V8's helper threads — normal priority, on CPUs
  // the burst keeps busy — take that lock to map and unmap pages of the main isolate's heap. In the VM lab
  // (Jool 4.1.9, scheduler trace) the thread slept 10–13 ms in mid-burst until a "V8 DefaultWorker" woke it,
  // and the kernel lost 24–54 sessions; with the ring faulted in first, no such sleep and none lost
  // (BENCHMARKS.md "Kernel thread").
  new Uint8Array(init.handoff.ring).fill(0);
  post({ kind: "starting" }); // before the warm-up: see its message type
  const handoff = new HandoffWriter(init.handoff);
  // The doorbell is a byte on a socket pair, which the main thread waits for in a poll on a runtime thread: a
  // send() takes no user-space lock. A postMessage wakes the main thread's event loop through its task queue, and
  // an Atomics.notify to an Atomics.waitAsync takes V8's process-wide futex list: locks the main thread takes too.
  // A normal-priority main thread preempted while it holds one makes this thread wait until the main thread runs
  // again: in the VM lab (Jool 4.1.9, scheduler trace) the thread slept 16 ms in mid-burst until the main thread
  // woke it, and the kernel lost sessions. Sent without waiting: a full pair means the main thread has word
  // already.
  const bell = new FdSocket(init.doorbellFd, init.wakeFd, BELL.length);
  const doorbell = () => void bell.send(BELL, true);
  warmUp(context, init.instance);
  context.writer.prepare(init.version || packVersion(DEFAULT_REQUEST_VERSION));
  // Woken by a batch, run at once: on two busy CPUs a normal-priority thread waited 18 ms for one (VM lab,
  // Jool 4.1.9), long enough for the kernel to lose sessions (ffi/thread_priority.ts).
  const priorityErrno = raiseCallingThread();
  post({ kind: "ready", priorityErrno, cpu: bindToOneCpu() });
  const socket = new FdSocket(init.fd, init.wakeFd, RECEIVE_BUFFER);
  serve(socket, context, handoff, doorbell, FOREVER, MAX_DRAIN);
}

/**
 * Binds the calling thread to the last CPU it may run on, when it may run on two or more; returns that CPU, or
 * -1. The main thread then keeps off it (`lib/kernel/thread_transport.ts`). Why: a real-time task is woken on the
 * CPU it last ran on and waits there while that CPU's task is inside the kernel where it cannot be preempted —
 * the scheduler moves it to another CPU only when the running task is real-time too. That task was most often
 * the daemon's own main thread in a system call (a datagram's send runs the receiving side's softirq work in
 * the sender's call): in the VM lab (Jool 4.1.9, after steady sync, scheduler trace) the thread waited up to
 * 10 ms behind it in mid-burst, and the kernel lost sessions; bound apart, no wait behind it in five runs
 * (BENCHMARKS.md "Kernel thread on Jool 4.1.9 after steady sync").
 */
function bindToOneCpu(): number {
  const mask = callingThreadCpus();
  if (typeof mask === "number") return -1;
  const cpus = cpusOf(mask);
  const cpu = cpus.at(-1);
  if (cpus.length < 2 || cpu === undefined) return -1;
  return setCallingThreadCpus(cpuMask([cpu])) === 0 ? cpu : -1;
}

/**
 * At most `wakes` times ({@link FOREVER}: until the wake pipe is written): wait for the socket, receive what waits
 * (`drain` datagrams at most) straight into the hand-off, ACK each plain batch of ours at once, publish it.
 * Allocates nothing per datagram (`lib/kernel/handoff.ts` says why).
 */
function serve(
  socket: FdSocket,
  context: LoopContext,
  handoff: HandoffWriter,
  doorbell: Doorbell,
  wakes: number,
  drain: number,
): void {
  const { familyId, key, gate, writer } = context;
  for (let left = wakes; left !== 0 && socket.wait() === "readable"; left = left > 0 ? left - 1 : left) {
    let read = 0;
    while (read < drain) {
      const slot = handoff.next();
      if (slot === undefined) {
        // The main thread is behind: leave the batches (unACKed) in the socket until a slot is free.
        handoff.waitForRoom(ROOM_WAIT_MS);
        if (socket.wait(0) === "woken") return;
        continue;
      }
      const size = socket.receiveInto(slot);
      if (size === "empty") break;
      read++;
      if (size === "overrun") {
        writeOverrun(slot);
        handoff.publish(NLMSG_HDRLEN, false);
        continue;
      }
      // Checked and ACKed in place, before anything else (a datagram cut by the slot is never ACKed here).
      const version = size <= slot.length ? ackOnArrival(slot, familyId, key, size) : 0;
      const acked = version !== 0 && !gate.held && socket.send(writer.ack(version)) === 0;
      handoff.publish(size, acked);
    }
    if (read > 0 && handoff.takeWaiter()) doorbell();
  }
}

/**
 * Runs the real loop ({@link serve}) over a socket pair with synthetic batches before the first real one, so
 * every function on the per-batch path — the loop itself included — is compiled and optimized. A fresh isolate
 * runs each function in its interpreter first, then recompiles the hot ones: in the VM lab (QEMU TCG, Jool
 * 4.1.9) a kernel thread warmed only on its helpers stalled 14–23 ms about 100 batches into 200-flow bursts,
 * and the kernel lost up to 72 sessions. Nothing reaches the kernel: the ACKs go to the pair, the datagrams to a
 * hand-off of its own, and the doorbell, rung for every batch as if the main thread always waited, to a pair of
 * its own.
 */
function warmUp(context: LoopContext, instance: string): void {
  const sample = encodeJooldAdd({
    familyId: context.familyId,
    pid: 0,
    seq: 0,
    version: DEFAULT_REQUEST_VERSION,
    instance,
  }, new Uint8Array(4 * 10));
  // Its own small ring: a full-size one would stay resident, unused, until the thread's isolate collects it.
  const memory = createHandoff(WARM_UP_SLOTS);
  const handoff = new HandoffWriter(memory);
  const taken = new HandoffReader(memory);
  const [ours, theirs] = openSocketPair();
  const [bellOurs, bellTheirs] = openSocketPair();
  const pipe = openWakePipe();
  try {
    const socket = new FdSocket(ours, pipe.readFd, RECEIVE_BUFFER);
    const kernel = new FdSocket(theirs, pipe.readFd, 4096);
    const bell = new FdSocket(bellOurs, pipe.readFd, BELL.length);
    const heard = new FdSocket(bellTheirs, pipe.readFd, BELL.length);
    const doorbell = () => void bell.send(BELL, true);
    for (let round = 0; round < WARM_UP_ROUNDS / WARM_UP_CHUNK; round++) {
      let sent = 0;
      while (sent < WARM_UP_CHUNK && kernel.send(sample, true) === 0) sent++;
      for (let wake = 0; wake < sent; wake++) {
        taken.announceWait(); // as if the main thread waited: the doorbell rings
        serve(socket, context, handoff, doorbell, 1, 1); // one wake per batch, as in a burst
      }
      while (kernel.receive() instanceof Uint8Array); // the ACKs, so the pair never fills
      while (heard.receive() instanceof Uint8Array); // the bells
      while (taken.take()); // and the hand-off
    }
  } finally {
    closeFd(ours);
    closeFd(theirs);
    closeFd(bellOurs);
    closeFd(bellTheirs);
    closeWakePipe(pipe);
  }
}

/** What the main thread receives for a receive-buffer overflow: a 16-byte NLMSG_OVERRUN, counted there. */
function writeOverrun(slot: Uint8Array): void {
  writeNetlinkHeader(slot, { length: NLMSG_HDRLEN, type: NLMSG_OVERRUN, flags: 0, seq: 0, pid: 0 });
}
