/**
 * A Generic Netlink socket opened through libnl, used as a raw pipe of whole netlink datagrams.
 *
 * libnl opens the socket (auto-ACK and sequence checking off, as upstream joold), resolves the family and the
 * multicast group and joins it. Messages are built and parsed by the pure codecs in `lib/jool/`: this wrapper
 * only moves bytes. Receiving: a synchronous drain with recv(MSG_DONTWAIT) until EAGAIN, and only when nothing
 * is waiting a poll() on a worker thread over {netlink fd, wake pipe}. close() writes to the pipe, so a pending
 * poll returns and shutdown is clean.
 * @module
 */
import { cString, errnoText, lastErrno, loadLibc } from "./libc.ts";
import { loadLibnl, loadLibnlGenl, nlErrorText } from "./libnl.ts";

/** libnl's "Object not found": the family (or group) is not registered. */
export const NLE_OBJ_NOTFOUND = 12;

const POLLIN = 0x1;
const MSG_DONTWAIT = 0x40;
const O_NONBLOCK = 0x800;
const O_CLOEXEC = 0x80000;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
/** NLMSG_OVERRUN: what receive() yields when the kernel reports a receive-buffer overflow (ENOBUFS). */
const NLMSG_OVERRUN = 4;
/** struct pollfd and nlmsghdr fields are in host order. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Bigger than any netlink datagram the Jool kernel sends (about 4 KiB at most). */
const RECEIVE_BUFFER = 65536;
/** Datagrams read in one go before they are yielded (bounds what a reader holds beyond its own queue). */
const MAX_DRAIN = 64;

/** A libnl or libc failure while opening or using the socket. */
export class NetlinkSocketError extends Error {
  /**
   * @param step what was being done
   * @param code libnl error code (positive NLE_*) or errno, per `source`
   */
  constructor(
    readonly step: string,
    readonly code: number,
    readonly source: "libnl" | "errno",
    options?: ErrorOptions,
  ) {
    super(`${step}: ${source === "libnl" ? nlErrorText(-code) : errnoText(code)}`, options);
    this.name = "NetlinkSocketError";
  }
}

/** The family (or its group) is not registered with the kernel's nlctrl. */
export class FamilyAbsentError extends Error {
  constructor(readonly family: string, readonly group?: string) {
    super(
      group === undefined
        ? `Generic Netlink family "${family}" not found`
        : `multicast group "${group}" of Generic Netlink family "${family}" not found`,
    );
    this.name = "FamilyAbsentError";
  }
}

/** What to open. */
export interface NetlinkSocketOptions {
  /** Generic Netlink family name, e.g. "Jool". */
  readonly family: string;
  /** Multicast group of that family to join, e.g. "joold". */
  readonly group?: string;
  /** Receive buffer wanted (default 4 MiB; SO_RCVBUFFORCE when privileged, else capped by rmem_max). */
  readonly receiveBufferBytes?: number;
  /** Send buffer (default 256 KiB). */
  readonly sendBufferBytes?: number;
}

/** An open Generic Netlink socket. */
export class NetlinkSocket {
  readonly #sk: Deno.PointerObject;
  readonly #pipe: Int32Array;
  readonly #pollfds = new Uint8Array(16);
  /** One struct pollfd for {@link hasPending} (the netlink socket alone). */
  readonly #pendingPollfd = new Uint8Array(8);
  readonly #pendingView = new DataView(this.#pendingPollfd.buffer);
  readonly #buffer = new Uint8Array(RECEIVE_BUFFER);
  #closed = false;
  #released = false;
  #polling = false;
  #polls = 0;

  private constructor(
    sk: Deno.PointerObject,
    pipe: Int32Array,
    /** Resolved family id. */
    readonly familyId: number,
    /** Resolved group id (0 when no group was asked). */
    readonly groupId: number,
    /** Our netlink port id. */
    readonly localPort: number,
    /** The socket's descriptor. */
    readonly fd: number,
    /** SO_RCVBUF as the kernel reports it (twice the requested value, capped). */
    readonly receiveBufferBytes: number,
  ) {
    this.#sk = sk;
    this.#pipe = pipe;
    const v = new DataView(this.#pollfds.buffer);
    v.setInt32(0, fd, LE);
    v.setInt16(4, POLLIN, LE);
    v.setInt32(8, pipe[0], LE);
    v.setInt16(12, POLLIN, LE);
    this.#pendingView.setInt32(0, fd, LE);
    this.#pendingView.setInt16(4, POLLIN, LE);
  }

  /**
   * Opens, connects, resolves and joins. Throws FamilyAbsentError when the family or group is not registered,
   * NetlinkSocketError for other failures, LibraryLoadError when libnl is missing.
   */
  static open(options: NetlinkSocketOptions): NetlinkSocket {
    const nl = loadLibnl();
    const genl = loadLibnlGenl();
    const libc = loadLibc();
    const sk = nl.nl_socket_alloc();
    if (sk === null) throw new NetlinkSocketError("nl_socket_alloc", 12, "errno");
    const pipe = new Int32Array(2);
    let pipeOpen = false;
    try {
      nl.nl_socket_disable_seq_check(sk);
      nl.nl_socket_disable_auto_ack(sk);
      check("genl_connect", genl.genl_connect(sk));
      const rcvbuf = options.receiveBufferBytes ?? 4 << 20;
      check(
        "nl_socket_set_buffer_size",
        nl.nl_socket_set_buffer_size(sk, rcvbuf, options.sendBufferBytes ?? 256 << 10),
      );
      const fd = nl.nl_socket_get_fd(sk);
      // Beyond rmem_max only with CAP_NET_ADMIN; without it the capped SO_RCVBUF above stays.
      const want = new Int32Array([rcvbuf]);
      libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, new Uint8Array(want.buffer), 4);
      const familyId = genl.genl_ctrl_resolve(sk, cString(options.family));
      if (familyId === -NLE_OBJ_NOTFOUND) throw new FamilyAbsentError(options.family);
      check(`resolving Generic Netlink family "${options.family}"`, familyId);
      let groupId = 0;
      if (options.group !== undefined) {
        groupId = genl.genl_ctrl_resolve_grp(sk, cString(options.family), cString(options.group));
        if (groupId === -NLE_OBJ_NOTFOUND) throw new FamilyAbsentError(options.family, options.group);
        check(`resolving multicast group "${options.group}"`, groupId);
        check(`joining multicast group "${options.group}"`, nl.nl_socket_add_membership(sk, groupId));
      }
      if (libc.pipe2(new Uint8Array(pipe.buffer), O_CLOEXEC | O_NONBLOCK) !== 0) {
        throw new NetlinkSocketError("pipe2", lastErrno(), "errno");
      }
      pipeOpen = true;
      return new NetlinkSocket(
        sk,
        pipe,
        familyId,
        groupId,
        nl.nl_socket_get_local_port(sk),
        fd,
        readRcvbuf(fd),
      );
    } catch (error) {
      if (pipeOpen) {
        libc.close(pipe[0]);
        libc.close(pipe[1]);
      }
      nl.nl_socket_free(sk);
      throw error;
    }
  }

  /** Sends one complete netlink message to the kernel. Throws NetlinkSocketError. */
  send(message: Uint8Array): void {
    if (this.#closed) throw new NetlinkSocketError("send", 9, "errno"); // EBADF
    const n = loadLibnl().nl_sendto(this.#sk, message as Uint8Array<ArrayBuffer>, BigInt(message.length));
    if (n < 0) throw new NetlinkSocketError("nl_sendto", -n, "libnl");
  }

  /**
   * Yields every datagram received (fresh copies), until close(). A receive-buffer overflow (ENOBUFS) is
   * yielded as a 16-byte NLMSG_OVERRUN message so the caller can count it. Throws NetlinkSocketError.
   *
   * Datagrams waiting in the socket are read in one go (up to 64), `onRead` seeing each right after its
   * recv() and before the next one, then yielded in order: whatever `onRead` sends to the kernel (an ACK) is
   * answered before the next recv(), without a round through the event loop.
   */
  async *receive(onRead?: (datagram: Uint8Array) => void): AsyncGenerator<Uint8Array> {
    const libc = loadLibc();
    const view = new DataView(this.#pollfds.buffer);
    try {
      while (!this.#closed) {
        // Whatever arrived while the caller worked on the last datagrams is read at once: the poll below is a
        // round trip through a worker thread and the event loop (measured: 11–22 ms under QEMU emulation for
        // a datagram that was already waiting), and a batch waiting here is a batch not yet ACKed.
        const drained = this.#drain(onRead);
        if (drained.length > 0) {
          for (const datagram of drained) {
            yield datagram;
            if (this.#closed) break;
          }
          continue;
        }
        view.setInt16(6, 0, LE);
        view.setInt16(14, 0, LE);
        this.#polling = true;
        this.#polls++;
        const ready = await libc.poll(this.#pollfds, 2n, -1);
        this.#polling = false;
        if (this.#closed) break;
        if (ready < 0) continue; // EINTR (errno is stale here: the call ran on another thread)
        if (view.getInt16(14, LE) !== 0) break; // the wake pipe: close() was called
      }
    } finally {
      this.#polling = false;
      if (this.#closed) this.#release();
    }
  }

  /** How many times receive() had to wait in poll() (nothing was waiting to be read). */
  get polls(): number {
    return this.#polls;
  }

  /**
   * Whether a datagram is waiting while receive() is parked in its poll, i.e. one it will read only after the
   * event loop has had a turn (a zero-timeout poll of the socket alone). False while receive() is draining.
   */
  hasPending(): boolean {
    if (this.#closed || !this.#polling) return false;
    this.#pendingView.setInt16(6, 0, LE);
    return loadLibc().poll_now(this.#pendingPollfd, 1n, 0) > 0 &&
      (this.#pendingView.getInt16(6, LE) & POLLIN) !== 0;
  }

  /** Stops receive() (waking its poll) and releases the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#polling) {
      loadLibc().write(this.#pipe[1], Uint8Array.of(1), 1n); // receive() releases when poll returns
    } else this.#release();
  }

  /** Reads the datagrams waiting (at most MAX_DRAIN), without blocking; `onRead` sees each as it is read. */
  #drain(onRead: ((datagram: Uint8Array) => void) | undefined): Uint8Array[] {
    const libc = loadLibc();
    const out: Uint8Array[] = [];
    while (!this.#closed && out.length < MAX_DRAIN) {
      const n = Number(libc.recv(this.fd, this.#buffer, BigInt(this.#buffer.length), MSG_DONTWAIT));
      let datagram: Uint8Array;
      if (n > 0) datagram = this.#buffer.slice(0, n);
      else if (n === 0) break;
      else {
        const errno = lastErrno(); // valid: recv ran synchronously on this thread
        if (errno === EAGAIN) break;
        if (errno === EINTR) continue;
        if (errno !== ENOBUFS) throw new NetlinkSocketError("recv", errno, "errno");
        datagram = overrunMessage();
      }
      out.push(datagram);
      onRead?.(datagram);
    }
    return out;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    const libc = loadLibc();
    libc.close(this.#pipe[0]);
    libc.close(this.#pipe[1]);
    loadLibnl().nl_socket_free(this.#sk);
  }
}

function check(step: string, result: number): void {
  if (result < 0) throw new NetlinkSocketError(step, -result, "libnl");
}

function readRcvbuf(fd: number): number {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const ok = loadLibc().getsockopt(
    fd,
    SOL_SOCKET,
    SO_RCVBUF,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return ok === 0 ? value[0] : 0;
}

function overrunMessage(): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint32(0, 16, LE);
  v.setUint16(4, NLMSG_OVERRUN, LE);
  return out;
}
