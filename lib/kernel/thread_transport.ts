/**
 * The main thread's side of the kernel thread (`lib/kernel/thread.ts`): starts it on an open kernel socket,
 * yields the datagrams it hands over, sends requests (JOOLD_ADD, the probe, the rare ACKs decided after
 * parsing) on the socket directly, and stops it: the wake pipe ends its blocking poll, it says "stopped", and
 * only then is the socket released (a descriptor closed under a blocked poll would not wake it).
 * @module
 */
import {
  closeFd,
  closeWakePipe,
  FdSocket,
  openSocketPair,
  openWakePipe,
  wake,
  type WakePipe,
} from "../../ffi/fd_socket.ts";
import { errnoText } from "../../ffi/libc.ts";
import { callingThreadCpus, cpuMask, cpusOf, setCallingThreadCpus } from "../../ffi/thread_priority.ts";
import type { Logger } from "../logger.ts";
import { AckGate } from "./ack_rule.ts";
import { createHandoff, HandoffReader } from "./handoff.ts";
import { KERNEL_THREAD_NAME, type KernelThreadInit, type KernelThreadMessage } from "./thread.ts";
import type { KernelDatagram, KernelTransport } from "./transport.ts";

/** An open socket to the kernel (or to a stand-in) that the kernel thread receives on. */
export interface KernelSocket {
  /** Its descriptor. */
  readonly fd: number;
  /** The Jool family id. */
  readonly familyId: number;
  /** Our netlink port. */
  readonly localPort: number;
  /** Sends one whole netlink message. Throws on failure. */
  send(message: Uint8Array): void;
  /** Releases it; called once the thread no longer uses the descriptor. */
  close(): void;
}

/** Options of {@link startKernelThread}. */
export interface KernelThreadOptions {
  /** The open socket the thread receives on. */
  readonly socket: KernelSocket;
  /** The configured instance. */
  readonly instance: string;
  /** Packed version of the local kernel when known (0 otherwise). */
  readonly version: number;
  /** The module the Worker runs: `kernelThreadModule()` (`lib/kernel/thread_module.ts`). */
  readonly threadModule: string | URL;
  /** Where the thread's scheduling priority is reported. */
  readonly log?: Logger;
  /** How long close() waits for the thread to stop (default 500 ms). */
  readonly stopTimeoutMs?: number;
}

/** The kernel thread failed or could not start. */
export class KernelThreadError extends Error {
  /** One line saying what failed. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KernelThreadError";
  }
}

/**
 * Starts the kernel thread on `socket` and resolves once it is ready (warmed up, ACKing on arrival).
 * Throws {@link KernelThreadError} when it fails to start; the socket is then still the caller's to close.
 */
export async function startKernelThread(options: KernelThreadOptions): Promise<KernelTransport> {
  const pipe = openWakePipe();
  const transport = new KernelThreadTransport(options, pipe);
  try {
    await transport.started;
  } catch (error) {
    transport.abandon();
    throw error;
  }
  if (transport.priorityErrno === 0) {
    options.log?.debug("kernel thread started at real-time priority (SCHED_FIFO 1)");
  } else {
    options.log?.warn(
      `kernel thread at normal priority (sched_setscheduler: ${
        errnoText(transport.priorityErrno)
      }): on a busy ` +
        "router its ACKs may wait for a CPU; run joold as root or grant it CAP_SYS_NICE",
    );
  }
  return transport;
}

class KernelThreadTransport implements KernelTransport {
  readonly familyId: number;
  readonly localPort: number;
  readonly ackGate = new AckGate();
  readonly started: Promise<void>;
  /** 0 when the kernel thread runs at real-time priority, else the errno of the refusal. */
  priorityErrno = 0;
  readonly #socket: KernelSocket;
  readonly #pipe: WakePipe;
  readonly #worker: Worker;
  readonly #stopTimeoutMs: number;
  readonly #handoff = createHandoff();
  readonly #reader = new HandoffReader(this.#handoff);
  readonly #stopped = Promise.withResolvers<void>();
  /** The doorbell's socket pair: the thread sends on the first, this side listens on the second. */
  readonly #bellFds: [number, number];
  /** The listening end (its own descriptor twice: poll() then reports it either way). */
  readonly #bell: FdSocket;
  /** The thread's end, for ringing from this side (stop, failure). */
  readonly #selfBell: FdSocket;
  #failure: KernelThreadError | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  /** The main thread's CPUs before it kept off the kernel thread's, given back by close(). */
  #mainCpus: Uint8Array | undefined;

  constructor(options: KernelThreadOptions, pipe: WakePipe) {
    this.#socket = options.socket;
    this.familyId = options.socket.familyId;
    this.localPort = options.socket.localPort;
    this.#pipe = pipe;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 500;
    this.#bellFds = openSocketPair();
    this.#bell = new FdSocket(this.#bellFds[1], this.#bellFds[1], 16);
    this.#selfBell = new FdSocket(this.#bellFds[0], this.#bellFds[0], 16);
    const ready = Promise.withResolvers<void>();
    this.started = ready.promise;
    this.#worker = new Worker(options.threadModule, { type: "module", name: KERNEL_THREAD_NAME });
    this.#worker.onmessage = (event: MessageEvent<KernelThreadMessage>) => {
      const m = event.data;
      switch (m.kind) {
        case "starting":
          return;
        case "ready":
          this.priorityErrno = m.priorityErrno;
          if (m.cpu >= 0) this.#keepOff(m.cpu, options.log);
          ready.resolve();
          return;
        case "stopped":
          this.#stopped.resolve();
          return;
        case "failed":
          this.#fail(new KernelThreadError(`the kernel thread failed: ${m.message}`));
          ready.reject(this.#failure);
          this.#stopped.resolve();
      }
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // reported through receive() as one line, not as an uncaught error
      this.#fail(new KernelThreadError(`the kernel thread failed: ${event.message.split("\n")[0]}`));
      ready.reject(this.#failure);
      this.#stopped.resolve();
    };
    const init: KernelThreadInit = {
      fd: options.socket.fd,
      wakeFd: pipe.readFd,
      familyId: this.familyId,
      localPort: this.localPort,
      instance: options.instance,
      version: options.version,
      gate: this.ackGate.flags,
      handoff: this.#handoff,
      doorbellFd: this.#bellFds[0],
    };
    this.#worker.postMessage(init);
  }

  send(message: Uint8Array): void {
    if (this.#closed) throw new KernelThreadError("the kernel channel is closed");
    this.#socket.send(message);
  }

  async *receive(): AsyncIterable<KernelDatagram> {
    while (true) {
      const next = this.#reader.take();
      if (next) {
        yield next;
        continue;
      }
      if (this.#failure) throw this.#failure;
      if (this.#closed) return;
      if (!this.#reader.announceWait()) continue; // one arrived meanwhile
      await this.#bell.waitAsync();
      if (this.#closed) return; // close() rang, and releases the doorbell's descriptors
      while (this.#bell.receive() instanceof Uint8Array); // every byte rung so far: one look at the ring serves all
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** After a failed start: stop the thread, keep the socket (the caller closes it). */
  abandon(): void {
    this.#closed = true;
    wake(this.#pipe);
    this.#worker.terminate();
    // The thread may not have stopped: its descriptors are left to the process's exit, as in close().
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#mainCpus) setCallingThreadCpus(this.#mainCpus);
    this.#ring();
    wake(this.#pipe);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) =>
      timer = setTimeout(() => resolve("late"), this.#stopTimeoutMs)
    );
    const outcome = await Promise.race([this.#stopped.promise, late]);
    clearTimeout(timer);
    this.#worker.terminate();
    // A thread that did not stop may still use the descriptors: leave them to the process's exit.
    if (outcome === "late") return;
    closeWakePipe(this.#pipe);
    closeFd(this.#bellFds[0]);
    closeFd(this.#bellFds[1]);
    this.#socket.close();
  }

  /**
   * Keeps the calling (main) thread off `cpu`, the kernel thread's own (lib/kernel/thread.ts, bindToOneCpu, says
   * why); close() gives it back its CPUs. A refusal costs latency, not correctness: logged, not fatal.
   */
  #keepOff(cpu: number, log: Logger | undefined): void {
    const mask = callingThreadCpus();
    const errno = typeof mask === "number"
      ? mask
      : setCallingThreadCpus(cpuMask(cpusOf(mask).filter((c) => c !== cpu)));
    if (errno === 0 && typeof mask !== "number") {
      this.#mainCpus = mask;
      log?.debug(`kernel thread bound to CPU ${cpu}; the main thread keeps off it`);
    } else {
      log?.warn(
        `kernel thread bound to CPU ${cpu}, but the main thread may still run there (${errnoText(errno)})`,
      );
    }
  }

  /** Ends a wait for the doorbell from this side. */
  #ring(): void {
    this.#selfBell.send(new Uint8Array(1), true);
  }

  #fail(error: KernelThreadError): void {
    this.#failure ??= error;
    this.#ring();
  }
}
