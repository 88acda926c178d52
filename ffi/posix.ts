/**
 * Linux x86-64/arm64 constants of <errno.h>, <sys/socket.h>, <fcntl.h> and <poll.h> that the FFI wrappers
 * pass to libc or compare its answers with: one definition each.
 * @module
 */

/** errno: interrupted by a signal; the call is simply made again. */
export const EINTR = 4;
/** errno: nothing to read, or no room to write, on a non-blocking descriptor. */
export const EAGAIN = 11;
/** errno: a netlink socket's receive buffer overflowed (datagrams were dropped). */
export const ENOBUFS = 105;

/** Address family of local (unix) sockets. */
export const AF_UNIX = 1;
/** Socket types. */
export const SOCK_DGRAM = 2;
/** See {@link SOCK_DGRAM}. */
export const SOCK_SEQPACKET = 5;
/** Flags or-ed into a socket type: non-blocking, close-on-exec. */
export const SOCK_NONBLOCK = 0x800;
/** See {@link SOCK_NONBLOCK}. */
export const SOCK_CLOEXEC = 0x80000;
/** send()/recv() flags: do not block; no SIGPIPE on a closed peer. */
export const MSG_DONTWAIT = 0x40;
/** See {@link MSG_DONTWAIT}. */
export const MSG_NOSIGNAL = 0x4000;
/** recv() flag: return the datagram's real length even when it did not fit the buffer. */
export const MSG_TRUNC = 0x20;
/** pipe2() flags (same values as the SOCK_ ones). */
export const O_NONBLOCK = 0x800;
/** See {@link O_NONBLOCK}. */
export const O_CLOEXEC = 0x80000;
/** poll() event: readable. */
export const POLLIN = 0x1;
