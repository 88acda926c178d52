/**
 * Receiving UDP datagrams with their packet info: recvmsg() on the descriptor of Deno's own socket, returning
 * each datagram's source address and the index of the interface it arrived on (IP_PKTINFO / IPV6_RECVPKTINFO).
 *
 * Why: `Deno.DatagramConn.receive` reports the source but not the arrival interface, and the net channel's
 * ingress filter (`"accept from"` with `"in interface"`) needs both. The wait for readability is a poll() on a
 * runtime thread (`nonblocking: true`) with a timeout, so the JS thread never blocks and a closed channel stops
 * waiting within that timeout; the reads themselves are recvmsg(MSG_DONTWAIT) until EAGAIN, on the JS thread.
 *
 * Struct layouts are those of 64-bit Linux (x86_64, aarch64): msghdr 56 bytes, iovec 16, cmsghdr 16 (data
 * 8-aligned), in_pktinfo 12, in6_pktinfo 20. The control-message parser is pure and exported for tests.
 * @module
 */
import { HOST_LITTLE_ENDIAN as HOST_LE } from "./endian.ts";
import { ErrnoError, lastErrno, loadLibc } from "./libc.ts";
import { decodeSockaddr, SOCKADDR_MAX, type SocketAddress } from "./host.ts";
import { EAGAIN, EINTR, MSG_DONTWAIT, MSG_TRUNC, POLLIN } from "./posix.ts";
import { setIntOption, SOCKOPT } from "./socket_options.ts";

/** cmsg type of an in6_pktinfo (level IPPROTO_IPV6). */
const IPV6_PKTINFO = 50;
/** msg_flags bit: the control buffer was too small and messages were cut. */
const MSG_CTRUNC = 0x8;
/** Room for one in_pktinfo and one in6_pktinfo control message, with headers and padding. */
const CONTROL_BYTES = 128;
const MSGHDR_BYTES = 56;

/** recvmsg() or poll() failed. */
export class PacketInfoError extends ErrnoError {
  /** The error's name in messages and logs. */
  override name = "PacketInfoError";
}

/** What the control messages of one datagram said. */
export interface PacketInfo {
  /** Index of the interface the datagram arrived on; undefined when no packet info came with it. */
  readonly interfaceIndex?: number;
}

/**
 * Walks the control messages (cmsghdr: cmsg_len as size_t, level, type; data 8-aligned) of `length` bytes and
 * returns the arrival interface from an IP_PKTINFO (in_pktinfo.ipi_ifindex, first int) or IPV6_PKTINFO
 * (in6_pktinfo.ipi6_ifindex, after the 16-byte address). Malformed or unknown messages are skipped; a
 * cmsg_len that would run past `length` ends the walk.
 */
export function parsePacketInfo(control: DataView, length: number): PacketInfo {
  let offset = 0;
  while (offset + 16 <= length) {
    const messageLength = Number(control.getBigUint64(offset, HOST_LE));
    if (messageLength < 16 || offset + messageLength > length) break;
    const level = control.getInt32(offset + 8, HOST_LE);
    const type = control.getInt32(offset + 12, HOST_LE);
    const data = offset + 16;
    if (level === SOCKOPT.IPPROTO_IP && type === SOCKOPT.IP_PKTINFO && messageLength >= 16 + 12) {
      return { interfaceIndex: control.getInt32(data, HOST_LE) };
    }
    if (level === SOCKOPT.IPPROTO_IPV6 && type === IPV6_PKTINFO && messageLength >= 16 + 20) {
      return { interfaceIndex: control.getUint32(data + 16, HOST_LE) };
    }
    offset += (messageLength + 7) & ~7;
  }
  return {};
}

/** One datagram read by {@link PacketInfoReceiver.receive}; its bytes are in the receiver's buffer. */
export interface ReceivedDatagram {
  /** Its real length (larger than the buffer when it was cut: MSG_TRUNC). */
  readonly length: number;
  /** Its source address, or undefined when the kernel gave none of a known family. */
  readonly source?: SocketAddress;
  /** The arrival interface, from the packet info. */
  readonly interfaceIndex?: number;
}

/** recvmsg() with packet info on one UDP socket it does not own (it never closes the descriptor). */
export class PacketInfoReceiver {
  /** Where each datagram's bytes land; valid until the next {@link receive}. */
  readonly buffer: Uint8Array<ArrayBuffer>;
  // Every buffer the msghdr points at is its own ArrayBuffer, kept alive by this object: off the V8 heap, so
  // its address is stable for the kernel to write into.
  readonly #name = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  readonly #control = new Uint8Array(new ArrayBuffer(CONTROL_BYTES));
  readonly #iovec = new Uint8Array(new ArrayBuffer(16));
  readonly #header = new Uint8Array(new ArrayBuffer(MSGHDR_BYTES));
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #pollfd = new Uint8Array(new ArrayBuffer(8));
  readonly #pollView = new DataView(this.#pollfd.buffer);

  /**
   * Turns packet info on (IP_PKTINFO for IPv4; IPV6_RECVPKTINFO and, for IPv4 senders of a dual-stack socket,
   * IP_PKTINFO too for IPv6). Throws `SocketOptionError`.
   * @param fd the socket
   * @param family its family
   * @param bufferBytes the receive buffer (a larger datagram is cut, its real length still reported)
   */
  constructor(readonly fd: number, family: 4 | 6, bufferBytes: number) {
    this.buffer = new Uint8Array(new ArrayBuffer(bufferBytes));
    setIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_PKTINFO, 1);
    if (family === 6) setIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_RECVPKTINFO, 1);
    const iov = new DataView(this.#iovec.buffer);
    iov.setBigUint64(0, pointerValue(this.buffer), HOST_LE);
    iov.setBigUint64(8, BigInt(bufferBytes), HOST_LE);
    const h = this.#headerView;
    h.setBigUint64(0, pointerValue(this.#name), HOST_LE); // msg_name
    h.setBigUint64(16, pointerValue(this.#iovec), HOST_LE); // msg_iov
    h.setBigUint64(24, 1n, HOST_LE); // msg_iovlen
    h.setBigUint64(32, pointerValue(this.#control), HOST_LE); // msg_control
    this.#pollView.setInt32(0, fd, HOST_LE);
    this.#pollView.setInt16(4, POLLIN, HOST_LE);
  }

  /** Reads one waiting datagram without blocking, or "empty". Throws {@link PacketInfoError}. */
  receive(): ReceivedDatagram | "empty" {
    const h = this.#headerView;
    const libc = loadLibc();
    while (true) {
      h.setUint32(8, SOCKADDR_MAX, HOST_LE); // msg_namelen
      h.setBigUint64(40, BigInt(CONTROL_BYTES), HOST_LE); // msg_controllen
      h.setInt32(48, 0, HOST_LE); // msg_flags
      const n = Number(libc.recvmsg(this.fd, this.#header, MSG_DONTWAIT | MSG_TRUNC));
      if (n < 0) {
        const errno = lastErrno(); // valid: recvmsg ran synchronously on this thread
        if (errno === EAGAIN) return "empty";
        if (errno === EINTR) continue;
        throw new PacketInfoError("recvmsg", errno);
      }
      const nameLength = h.getUint32(8, HOST_LE);
      const controlLength = Number(h.getBigUint64(40, HOST_LE));
      const flags = h.getInt32(48, HOST_LE);
      const source = nameLength >= 16 ? decodeSockaddr(new DataView(this.#name.buffer)) : undefined;
      // A cut control buffer cannot hide the packet info (it comes first and fits), but say nothing then.
      const info = (flags & MSG_CTRUNC) === 0
        ? parsePacketInfo(new DataView(this.#control.buffer), Math.min(controlLength, CONTROL_BYTES))
        : {};
      return { length: n, source, interfaceIndex: info.interfaceIndex };
    }
  }

  /**
   * Waits on a runtime thread until the socket is readable (true) or `timeoutMs` passes (false); the JS
   * thread stays free. Throws {@link PacketInfoError} when poll() reports the descriptor invalid.
   */
  async readable(timeoutMs: number): Promise<boolean> {
    this.#pollView.setInt16(6, 0, HOST_LE);
    const ready = await loadLibc().poll(this.#pollfd, 1n, timeoutMs);
    if (ready <= 0) return false; // timeout, or EINTR (errno is stale here: the call ran on another thread)
    const revents = this.#pollView.getInt16(6, HOST_LE);
    if ((revents & POLLNVAL) !== 0) throw new PacketInfoError("poll", EBADF);
    return true;
  }
}

const POLLNVAL = 0x20;
const EBADF = 9;

function pointerValue(bytes: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}
