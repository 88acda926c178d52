/**
 * I/O on an already open datagram socket by its descriptor: a wait in poll() over {socket, wake pipe}, reads of
 * what is waiting with recv(MSG_DONTWAIT), sends with send(). The blocking wait is for a thread that does
 * nothing else (the kernel thread, a Worker of its own): it blocks only that thread, never the main event loop;
 * writing to the wake pipe (from any thread) ends the wait, which is how the thread is stopped. The
 * asynchronous wait (on a runtime thread) is for the main thread's uses, e.g. a test's kernel stand-in.
 *
 * The socket is identified by its descriptor only: descriptors are per process, so a socket opened on the main
 * thread (libnl's netlink socket) is used here as is. `send()` without an address goes to the socket's default
 * destination: the kernel, for a netlink socket libnl has bound but not connected.
 * @module
 */
import { HOST_LITTLE_ENDIAN as HOST_LE } from "./endian.ts";
import { ErrnoError, lastErrno, loadLibc, sizeArg } from "./libc.ts";
import {
  AF_UNIX,
  EAGAIN,
  EINTR,
  ENOBUFS,
  MSG_DONTWAIT,
  MSG_TRUNC,
  O_CLOEXEC,
  O_NONBLOCK,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
} from "./posix.ts";

/** A libc call failed; `errno` says why. */
export class FdSocketError extends ErrnoError {
  /** The error's name in messages and logs. */
  override name = "FdSocketError";
}

/** A pipe whose write end wakes a {@link FdSocket} waiting in poll(). */
export interface WakePipe {
  /** The end the waiter polls. */
  readonly readFd: number;
  /** The end {@link wake} writes to. */
  readonly writeFd: number;
}

/** Opens a non-blocking, close-on-exec pipe. Throws {@link FdSocketError}. */
export function openWakePipe(): WakePipe {
  const fds = new Int32Array(2);
  if (loadLibc().pipe2(new Uint8Array(fds.buffer), O_CLOEXEC | O_NONBLOCK) !== 0) {
    throw new FdSocketError("pipe2", lastErrno());
  }
  return { readFd: fds[0], writeFd: fds[1] };
}

/** Wakes whoever waits on the pipe's read end (one byte; a full pipe already wakes it). Any thread. */
export function wake(pipe: WakePipe): void {
  loadLibc().write(pipe.writeFd, Uint8Array.of(1), 1n);
}

/** Closes both ends of the pipe. */
export function closeWakePipe(pipe: WakePipe): void {
  const libc = loadLibc();
  libc.close(pipe.readFd);
  libc.close(pipe.writeFd);
}

/**
 * A connected pair of AF_UNIX SOCK_SEQPACKET sockets (message boundaries kept, no queue-length limit beyond the
 * buffers): a stand-in for a netlink socket in tests and benchmarks. Throws {@link FdSocketError}.
 */
export function openSocketPair(): [number, number] {
  const fds = new Int32Array(2);
  if (loadLibc().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, new Uint8Array(fds.buffer)) !== 0) {
    throw new FdSocketError("socketpair", lastErrno());
  }
  return [fds[0], fds[1]];
}

/** Closes a descriptor (ignores errors: used on paths that release). */
export function closeFd(fd: number): void {
  loadLibc().close(fd);
}

/** What {@link FdSocket.receive} found. */
export type FdReceive =
  /** A datagram: a fresh copy the caller may keep or transfer. */
  | Uint8Array<ArrayBuffer>
  /** Nothing waiting. */
  | "empty"
  /** The kernel dropped datagrams: the receive buffer overflowed (ENOBUFS). */
  | "overrun";

/** EAGAIN: a non-blocking call found nothing to read or no room to write. */
export const EAGAIN_ERRNO: number = EAGAIN;

/** One socket and one wake pipe, used from one thread. */
export class FdSocket {
  readonly #pollfds = new Uint8Array(16);
  readonly #view = new DataView(this.#pollfds.buffer);
  readonly #buffer: Uint8Array<ArrayBuffer>;

  /**
   * Wraps an open socket and a wake pipe's read end (neither is closed by this object).
   * @param fd the socket
   * @param wakeFd the wake pipe's read end
   * @param bufferBytes largest datagram expected (a larger one is truncated by the kernel)
   */
  constructor(readonly fd: number, readonly wakeFd: number, bufferBytes = 65536) {
    this.#buffer = new Uint8Array(bufferBytes);
    this.#view.setInt32(0, fd, HOST_LE);
    this.#view.setInt16(4, POLLIN, HOST_LE);
    this.#view.setInt32(8, wakeFd, HOST_LE);
    this.#view.setInt16(12, POLLIN, HOST_LE);
  }

  /**
   * Blocks the calling thread until the socket is readable ("readable") or the wake pipe is ("woken"), or
   * `timeoutMs` passes ("timeout"; -1 waits for ever). Throws {@link FdSocketError}.
   */
  wait(timeoutMs = -1): "readable" | "woken" | "timeout" {
    const libc = loadLibc();
    while (true) {
      this.#view.setInt16(6, 0, HOST_LE);
      this.#view.setInt16(14, 0, HOST_LE);
      const ready = libc.poll_sync(this.#pollfds, 2n, timeoutMs);
      if (ready < 0) {
        const errno = lastErrno(); // valid: poll ran synchronously on this thread
        if (errno === EINTR) continue;
        throw new FdSocketError("poll", errno);
      }
      if (ready === 0) return "timeout";
      if (this.#view.getInt16(14, HOST_LE) !== 0) return "woken";
      return "readable";
    }
  }

  /**
   * Like {@link wait} with no timeout, but the poll runs on a runtime thread and the caller's event loop stays
   * free. Throws {@link FdSocketError}.
   */
  async waitAsync(): Promise<"readable" | "woken"> {
    const libc = loadLibc();
    while (true) {
      this.#view.setInt16(6, 0, HOST_LE);
      this.#view.setInt16(14, 0, HOST_LE);
      const ready = await libc.poll(this.#pollfds, 2n, -1);
      if (ready < 0) continue; // EINTR (errno is stale here: the call ran on another thread)
      if (this.#view.getInt16(14, HOST_LE) !== 0) return "woken";
      if (ready > 0) return "readable";
    }
  }

  /** Reads one waiting datagram without blocking: a fresh copy. Throws {@link FdSocketError}. */
  receive(): FdReceive {
    const n = this.receiveInto(this.#buffer);
    return typeof n === "number" ? this.#buffer.slice(0, n) : n; // slice stops at the buffer: a cut datagram
  }

  /**
   * Reads one waiting datagram into `target` (e.g. a slot of shared memory) without blocking or allocating;
   * returns its real length, which is larger than `target` when the datagram did not fit (its end is lost).
   * Throws {@link FdSocketError}.
   */
  receiveInto(target: Uint8Array): number | "empty" | "overrun" {
    const libc = loadLibc();
    while (true) {
      const n = libc.recv(
        this.fd,
        target as Uint8Array<ArrayBuffer>,
        sizeArg(target.length),
        MSG_DONTWAIT | MSG_TRUNC,
      );
      if (n > 0) return n;
      if (n === 0) return "empty"; // a zero-length datagram, or the peer of a socket pair closed
      const errno = lastErrno();
      if (errno === EAGAIN) return "empty";
      if (errno === EINTR) continue;
      if (errno === ENOBUFS) return "overrun";
      throw new FdSocketError("recv", errno);
    }
  }

  /**
   * Sends one datagram to the socket's default destination; returns 0, or the errno of the failure (EAGAIN
   * when `dontWait` and the socket's buffer is full).
   */
  send(message: Uint8Array, dontWait = false): number {
    const libc = loadLibc();
    const flags = dontWait ? MSG_DONTWAIT : 0;
    while (true) {
      const n = libc.send(this.fd, message as Uint8Array<ArrayBuffer>, sizeArg(message.length), flags);
      if (n >= 0) return 0;
      const errno = lastErrno();
      if (errno !== EINTR) return errno;
    }
  }
}
