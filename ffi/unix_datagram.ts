/**
 * A datagram sender to AF_UNIX SOCK_DGRAM sockets named by their `sun_path` bytes (a path, or an abstract name
 * with its leading NUL), and the process environment read through libc: what systemd's notification protocol
 * needs (`lib/systemd/notifier.ts`).
 *
 * Why libc rather than Deno's API: the operators run joold with `--unstable-net --allow-net --allow-ffi
 * --allow-read` only, and Deno asks for `--allow-env` to read `$NOTIFY_SOCKET` and for `--allow-write` to send
 * from a unix datagram socket (which it must also bind to a path first); it has no abstract addresses at all.
 * socket()/sendto()/getenv() need only `--allow-ffi`. The socket is non-blocking: a notification never holds
 * the event loop, a full receiver is an error the caller logs.
 * @module
 */
import { HOST_LITTLE_ENDIAN } from "./endian.ts";
import { cString, ErrnoError, lastErrno, loadLibc } from "./libc.ts";
import { AF_UNIX, EINTR, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from "./posix.ts";

/** offsetof(struct sockaddr_un, sun_path): sun_family is 2 bytes. */
const SUN_PATH_OFFSET = 2;
/** sizeof(sun_path) on Linux. */
const SUN_PATH_MAX = 108;

/** A libc call of the sender failed; `errno` says why. */
export class UnixDatagramError extends ErrnoError {
  /** The error's name in messages and logs. */
  override name = "UnixDatagramError";
}

/** getenv(): the value of an environment variable, or undefined when it is not set. */
export function readEnvironment(name: string): string | undefined {
  const p = loadLibc().getenv(cString(name));
  return p === null ? undefined : Deno.UnsafePointerView.getCString(p);
}

/** An unbound, non-blocking AF_UNIX SOCK_DGRAM socket that sends to addresses given as `sun_path` bytes. */
export class UnixDatagramSender {
  readonly #fd: number;
  #closed = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens the socket. Throws {@link UnixDatagramError}. */
  static open(): UnixDatagramSender {
    const fd = loadLibc().socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new UnixDatagramError("socket(AF_UNIX, SOCK_DGRAM)", lastErrno());
    return new UnixDatagramSender(fd);
  }

  /**
   * Sends `message` as one datagram to the socket at `sunPath` (all of its bytes count in the address length).
   * Throws {@link UnixDatagramError} (e.g. ENOENT or ECONNREFUSED: nobody listens there; EAGAIN: the
   * receiver's queue is full), or RangeError for an address that cannot be a `sun_path`.
   */
  send(sunPath: Uint8Array, message: Uint8Array): void {
    if (this.#closed) throw new UnixDatagramError("sendto on a closed socket", 9 /* EBADF */);
    if (sunPath.length === 0 || sunPath.length > SUN_PATH_MAX) {
      throw new RangeError(`a sun_path has 1 to ${SUN_PATH_MAX} bytes, got ${sunPath.length}`);
    }
    const address = new Uint8Array(SUN_PATH_OFFSET + sunPath.length);
    new DataView(address.buffer).setUint16(0, AF_UNIX, HOST_LITTLE_ENDIAN);
    address.set(sunPath, SUN_PATH_OFFSET);
    const libc = loadLibc();
    while (true) {
      const n = libc.sendto(
        this.#fd,
        message as Uint8Array<ArrayBuffer>,
        BigInt(message.length),
        MSG_NOSIGNAL,
        address,
        address.length,
      );
      if (n >= 0n) return;
      const errno = lastErrno(); // valid: sendto ran synchronously on this thread
      if (errno !== EINTR) throw new UnixDatagramError("sendto", errno);
    }
  }

  /** Closes the socket (once; later calls do nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    loadLibc().close(this.#fd);
  }
}
