/**
 * Multicast socket options that `Deno.listenDatagram` cannot set, applied with setsockopt() on the descriptor
 * of Deno's own socket.
 *
 * Why this module exists: Deno's UDP socket offers `joinMulticastV4/V6`, `setLoopback` and (IPv4 only)
 * `setTTL`, but no outgoing-interface option (IP_MULTICAST_IF / IPV6_MULTICAST_IF), no IPv6 hop limit
 * (IPV6_MULTICAST_HOPS stays 1) and no way to get the descriptor. Upstream joold sets all of them, and without
 * them `out interface` and `ttl` would be silently ignored: with two interfaces the datagrams could leak
 * through the wrong one, and an IPv4 send with no multicast route fails with "Network unreachable". So we find
 * the descriptor Deno opened — getsockname() on each open descriptor, matching family, bound address, port and
 * scope, minus the ones that matched before the socket was made — and set the options on it.
 *
 * Failures are this module's own typed errors ({@link SocketOptionError}, {@link SocketDescriptorError});
 * `lib/net/channel.ts` maps them to the daemon's exit status. Addresses come in as raw bytes.
 * @module
 */
import { HOST_LITTLE_ENDIAN } from "./endian.ts";
import { errnoText, lastErrno, loadLibc } from "./libc.ts";
import { AF_INET, decodeSockaddr, SOCKADDR_MAX, type SocketAddress } from "./host.ts";
import { SOCK_CLOEXEC, SOCK_DGRAM } from "./posix.ts";

/** Linux socket option levels and names (docs/protocol.md §6.2). */
export const SOCKOPT = {
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_REUSEPORT: 15,
  SO_RCVBUF: 8,
  SO_RCVBUFFORCE: 33,
  IPPROTO_IP: 0,
  IP_MULTICAST_IF: 32,
  IP_MULTICAST_TTL: 33,
  IP_MULTICAST_LOOP: 34,
  IP_PKTINFO: 8,
  IP_MULTICAST_ALL: 49,
  IPPROTO_IPV6: 41,
  IPV6_RECVPKTINFO: 49,
  IPV6_MULTICAST_ALL: 29,
  IPV6_MULTICAST_IF: 17,
  IPV6_MULTICAST_HOPS: 18,
  IPV6_MULTICAST_LOOP: 19,
} as const;

const OPTION_NAMES: Record<string, string> = {
  [`${SOCKOPT.SOL_SOCKET}/${SOCKOPT.SO_REUSEADDR}`]: "SO_REUSEADDR",
  [`${SOCKOPT.SOL_SOCKET}/${SOCKOPT.SO_REUSEPORT}`]: "SO_REUSEPORT",
  [`${SOCKOPT.SOL_SOCKET}/${SOCKOPT.SO_RCVBUF}`]: "SO_RCVBUF",
  [`${SOCKOPT.SOL_SOCKET}/${SOCKOPT.SO_RCVBUFFORCE}`]: "SO_RCVBUFFORCE",
  [`${SOCKOPT.IPPROTO_IP}/${SOCKOPT.IP_MULTICAST_IF}`]: "IP_MULTICAST_IF",
  [`${SOCKOPT.IPPROTO_IP}/${SOCKOPT.IP_MULTICAST_TTL}`]: "IP_MULTICAST_TTL",
  [`${SOCKOPT.IPPROTO_IP}/${SOCKOPT.IP_MULTICAST_LOOP}`]: "IP_MULTICAST_LOOP",
  [`${SOCKOPT.IPPROTO_IP}/${SOCKOPT.IP_PKTINFO}`]: "IP_PKTINFO",
  [`${SOCKOPT.IPPROTO_IP}/${SOCKOPT.IP_MULTICAST_ALL}`]: "IP_MULTICAST_ALL",
  [`${SOCKOPT.IPPROTO_IPV6}/${SOCKOPT.IPV6_RECVPKTINFO}`]: "IPV6_RECVPKTINFO",
  [`${SOCKOPT.IPPROTO_IPV6}/${SOCKOPT.IPV6_MULTICAST_ALL}`]: "IPV6_MULTICAST_ALL",
  [`${SOCKOPT.IPPROTO_IPV6}/${SOCKOPT.IPV6_MULTICAST_IF}`]: "IPV6_MULTICAST_IF",
  [`${SOCKOPT.IPPROTO_IPV6}/${SOCKOPT.IPV6_MULTICAST_HOPS}`]: "IPV6_MULTICAST_HOPS",
  [`${SOCKOPT.IPPROTO_IPV6}/${SOCKOPT.IPV6_MULTICAST_LOOP}`]: "IPV6_MULTICAST_LOOP",
};

function optionName(level: number, name: number): string {
  return OPTION_NAMES[`${level}/${name}`] ?? `option ${level}/${name}`;
}

/** setsockopt() or getsockopt() failed. The message is one line naming the option, the value and the errno text. */
export class SocketOptionError extends Error {
  /**
   * A failed setsockopt()/getsockopt().
   * @param message one line, e.g. "setsockopt(IP_MULTICAST_TTL, 256) on descriptor 7 failed: Invalid argument"
   * @param errno the C errno
   * @param options `cause`, when there is one
   */
  constructor(message: string, readonly errno: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "SocketOptionError";
  }
}

/**
 * The descriptor of a freshly bound socket could not be told: `found` lists the new matches (none, or more
 * than one), since setting options on the wrong socket would be silent misconfiguration.
 */
export class SocketDescriptorError extends Error {
  /**
   * No single new descriptor matched.
   * @param message one line
   * @param found the new descriptors bound to the wanted address (empty or more than one)
   */
  constructor(message: string, readonly found: readonly number[], options?: ErrorOptions) {
    super(message, options);
    this.name = "SocketDescriptorError";
  }
}

// ---- finding Deno's descriptor -----------------------------------------------------------------------------

/** What the wanted socket is bound to. */
export interface BoundAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Raw address bytes (4 or 16), without scope. */
  readonly bytes: Uint8Array;
  /** Port, host order. */
  readonly port: number;
  /** IPv6 scope interface index, when bound with `%ifname` (0 or absent otherwise). */
  readonly scopeId?: number;
}

/** getsockname() of a descriptor, or undefined when it is not an IPv4/IPv6 socket (or not open). */
export function boundAddressOf(fd: number): SocketAddress | undefined {
  const buffer = new Uint8Array(SOCKADDR_MAX);
  const length = new Uint32Array([SOCKADDR_MAX]);
  if (loadLibc().getsockname(fd, buffer, length) !== 0) return undefined; // EBADF, ENOTSOCK: not a candidate
  return decodeSockaddr(new DataView(buffer.buffer));
}

/**
 * The process's open descriptors: /proc/self/fd when readable, else 0–1023 (getsockname() rejects the
 * closed ones with EBADF).
 */
function openDescriptors(): number[] {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].map((e) => Number(e.name)).filter(Number.isInteger);
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied)) {
      throw cause;
    }
    return Array.from({ length: 1024 }, (_, i) => i);
  }
}

/** Every open descriptor whose getsockname() equals `wanted` (family, address bytes, port, scope). */
export function socketDescriptorsBoundTo(wanted: BoundAddress): number[] {
  const bytes = wanted.bytes;
  if (bytes.length !== (wanted.family === 4 ? 4 : 16)) {
    throw new TypeError(
      `an IPv${wanted.family} address has ${wanted.family === 4 ? 4 : 16} bytes, not ${bytes.length}`,
    );
  }
  const matches: number[] = [];
  for (const fd of openDescriptors()) {
    const bound = boundAddressOf(fd);
    if (
      bound && bound.family === wanted.family && bound.port === wanted.port &&
      bound.scopeId === (wanted.scopeId ?? 0) && bound.bytes.every((b, i) => b === bytes[i])
    ) {
      matches.push(fd);
    }
  }
  return matches;
}

/**
 * Finds the descriptor of the socket just bound to `wanted`: the one match that is not in `before` (the
 * matches taken right before the socket was created). Throws {@link SocketDescriptorError} when there is none
 * or more than one.
 */
export function findSocketDescriptor(wanted: BoundAddress, before: readonly number[] = []): number {
  const fresh = socketDescriptorsBoundTo(wanted).filter((fd) => !before.includes(fd));
  const where = `IPv${wanted.family} port ${wanted.port}`;
  if (fresh.length === 0) {
    throw new SocketDescriptorError(
      `cannot find the descriptor of the new UDP socket bound to ${where}`,
      fresh,
    );
  }
  if (fresh.length > 1) {
    throw new SocketDescriptorError(
      `found ${fresh.length} new UDP sockets bound to ${where} (descriptors ${
        fresh.join(", ")
      }); cannot tell which is ours`,
      fresh,
    );
  }
  return fresh[0];
}

// ---- setsockopt / getsockopt -------------------------------------------------------------------------------

function setRaw(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array<ArrayBuffer>,
  shown: string,
): void {
  if (loadLibc().setsockopt(fd, level, name, value, value.byteLength) !== 0) {
    const errno = lastErrno();
    throw new SocketOptionError(
      `setsockopt(${optionName(level, name)}, ${shown}) on descriptor ${fd} failed: ${errnoText(errno)}`,
      errno,
    );
  }
}

function getRaw(fd: number, level: number, name: number, size: number): Uint8Array {
  const value = new Uint8Array(size);
  const length = new Uint32Array([size]);
  if (loadLibc().getsockopt(fd, level, name, value, length) !== 0) {
    const errno = lastErrno();
    throw new SocketOptionError(
      `getsockopt(${optionName(level, name)}) on descriptor ${fd} failed: ${errnoText(errno)}`,
      errno,
    );
  }
  return value.subarray(0, length[0]);
}

/** setsockopt() with a 4-byte int value. Throws {@link SocketOptionError} naming option, value and errno text. */
export function setIntOption(fd: number, level: number, name: number, value: number): void {
  setRaw(fd, level, name, new Uint8Array(new Int32Array([value]).buffer), String(value)); // host order
}

/** getsockopt() of an int option (IPv4 TTL/LOOP may come back as one byte; both are handled). */
export function getIntOption(fd: number, level: number, name: number): number {
  const value = getRaw(fd, level, name, 4);
  if (value.length === 1) return value[0];
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getInt32(0, HOST_LITTLE_ENDIAN);
}

/**
 * Asks for a receive buffer of `bytes`: SO_RCVBUFFORCE (CAP_NET_ADMIN, which joold has for Jool anyway) so the
 * size is not capped by net.core.rmem_max, else SO_RCVBUF (capped). Returns the size the kernel granted
 * (getsockopt; Linux doubles the request for bookkeeping).
 */
export function setReceiveBuffer(fd: number, bytes: number): number {
  const buffer = new Uint8Array(new Int32Array([bytes]).buffer);
  if (loadLibc().setsockopt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUFFORCE, buffer, 4) !== 0) {
    setIntOption(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUF, bytes); // EPERM without CAP_NET_ADMIN: capped
  }
  return getIntOption(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUF);
}

/** IP_MULTICAST_TTL (IPv4) or IPV6_MULTICAST_HOPS (IPv6), 0–255. */
export function setMulticastTtl(fd: number, family: 4 | 6, ttl: number): void {
  if (family === 4) setIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_TTL, ttl);
  else setIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_HOPS, ttl);
}

/** Reads back IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS. */
export function getMulticastTtl(fd: number, family: 4 | 6): number {
  return family === 4
    ? getIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_TTL)
    : getIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_HOPS);
}

/** IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP: whether local sockets receive what this one sends. */
export function setMulticastLoop(fd: number, family: 4 | 6, on: boolean): void {
  if (family === 4) setIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_LOOP, on ? 1 : 0);
  else setIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_LOOP, on ? 1 : 0);
}

/** Reads back IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP. */
export function getMulticastLoop(fd: number, family: 4 | 6): boolean {
  return (family === 4
    ? getIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_LOOP)
    : getIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_LOOP)) !== 0;
}

/**
 * IP_MULTICAST_IF with a 4-byte in_addr (`address`, network order): the local address (hence interface) IPv4
 * multicast leaves from.
 */
export function setMulticastInterfaceV4(fd: number, address: Uint8Array): void {
  if (address.length !== 4) throw new TypeError(`an IPv4 address has 4 bytes, not ${address.length}`);
  setRaw(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_IF, new Uint8Array(address), address.join("."));
}

/** Reads back IP_MULTICAST_IF as an address ("0.0.0.0" when unset). */
export function getMulticastInterfaceV4(fd: number): string {
  const value = getRaw(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_IF, 4);
  return Array.from(value).join(".");
}

/** IPV6_MULTICAST_IF with an interface index (int). */
export function setMulticastInterfaceV6(fd: number, index: number): void {
  setIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_IF, index);
}

/** Reads back IPV6_MULTICAST_IF (0 when unset). */
export function getMulticastInterfaceV6(fd: number): number {
  return getIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_IF);
}

/**
 * IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off: a socket bound to the wildcard address (the unicast peers' case)
 * then hears only the groups it joined itself, not every group some other socket of the host joined on its port.
 */
export function setMulticastAllOff(fd: number, family: 4 | 6): void {
  if (family === 4) setIntOption(fd, SOCKOPT.IPPROTO_IP, SOCKOPT.IP_MULTICAST_ALL, 0);
  else setIntOption(fd, SOCKOPT.IPPROTO_IPV6, SOCKOPT.IPV6_MULTICAST_ALL, 0);
}

/** SIOCGIFMTU (`<linux/sockios.h>`): an interface's MTU, by name, through any socket of its namespace. */
const SIOCGIFMTU = 0x8921;
/** Bytes of `struct ifreq`: IFNAMSIZ (16) of name, then a 24-byte union (`ifr_mtu`, an int, at its start). */
const IFREQ_BYTES = 40;

/**
 * The MTU of interface `name`, asked with SIOCGIFMTU on socket `fd` — so the answer is that of the socket's
 * network namespace, whatever /sys shows (a daemon started by `nsenter --net` or systemd's
 * `NetworkNamespacePath=` sees the host's /sys/class/net). Undefined when there is no such interface (ENODEV),
 * or the name does not fit IFNAMSIZ.
 */
export function interfaceMtu(fd: number, name: string): number | undefined {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length >= 16) return undefined;
  const request = new Uint8Array(IFREQ_BYTES);
  request.set(bytes);
  if (loadLibc().ioctl(fd, BigInt(SIOCGIFMTU), request) !== 0) return undefined;
  return new DataView(request.buffer).getInt32(16, HOST_LITTLE_ENDIAN);
}

/**
 * {@link interfaceMtu} through a socket of its own (opened and closed here), for callers without one
 * (`--check`). Undefined when no socket can be opened or the interface is not there.
 */
export function interfaceMtuByName(name: string): number | undefined {
  const libc = loadLibc();
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    return interfaceMtu(fd, name);
  } finally {
    libc.close(fd);
  }
}
