/**
 * Host facts through libc: interface indexes (`if_nametoindex`), interface addresses (`getifaddrs`), host name
 * and service resolution (`getaddrinfo`), plus the sockaddr codec they need.
 *
 * FFI instead of `Deno.networkInterfaces()` / `Deno.resolveDns()` so the daemon needs no `--allow-sys`, and so
 * host names resolve exactly like upstream joold's (NSS: /etc/hosts, then DNS; services from /etc/services).
 * Struct offsets are those of glibc on 64-bit Linux (x86_64, aarch64). Addresses cross this boundary as raw
 * bytes (4 or 16); turning them into text is `lib/net/address.ts`'s job, so `ffi/` imports nothing from `lib/`.
 * @module
 */
import { HOST_LITTLE_ENDIAN } from "./endian.ts";
import { cString, loadLibc } from "./libc.ts";

/** AF_INET on Linux. */
export const AF_INET = 2;
/** AF_INET6 on Linux. */
export const AF_INET6 = 10;
const AF_UNSPEC = 0;
const SOCK_DGRAM = 2;
/** IF_NAMESIZE: interface names are at most 15 bytes plus NUL. */
const IF_NAMESIZE = 16;

/** A decoded `sockaddr_in` / `sockaddr_in6`. */
export interface SocketAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Raw address bytes (4 or 16), network order, without scope. */
  readonly bytes: Uint8Array;
  /** Port, host order. */
  readonly port: number;
  /** sin6_scope_id (0 for IPv4 and unscoped IPv6). */
  readonly scopeId: number;
}

// ---- sockaddr ----------------------------------------------------------------------------------------------

/** sizeof(struct sockaddr_in6), the largest sockaddr this module reads. */
export const SOCKADDR_MAX = 28;

/** Decodes a sockaddr_in / sockaddr_in6 (family in host order, port big-endian), or undefined for others. */
export function decodeSockaddr(view: DataView, offset = 0): SocketAddress | undefined {
  const family = view.getUint16(offset, HOST_LITTLE_ENDIAN);
  const port = view.getUint16(offset + 2, false);
  if (family === AF_INET) {
    const bytes = new Uint8Array(
      view.buffer.slice(view.byteOffset + offset + 4, view.byteOffset + offset + 8),
    );
    return { family: 4, bytes, port, scopeId: 0 };
  }
  if (family === AF_INET6) {
    const bytes = new Uint8Array(
      view.buffer.slice(view.byteOffset + offset + 8, view.byteOffset + offset + 24),
    );
    const scopeId = view.getUint32(offset + 24, HOST_LITTLE_ENDIAN);
    return { family: 6, bytes, port, scopeId };
  }
  return undefined;
}

// ---- interfaces --------------------------------------------------------------------------------------------

/** if_nametoindex(); undefined when there is no such interface (or the name cannot be one). */
export function interfaceIndex(name: string): number | undefined {
  if (name.length === 0 || new TextEncoder().encode(name).length >= IF_NAMESIZE || name.includes("\0")) {
    return undefined;
  }
  const index = loadLibc().if_nametoindex(cString(name));
  return index === 0 ? undefined : index;
}

/** if_indextoname(); undefined when no interface has that index. */
export function interfaceName(index: number): string | undefined {
  const buffer = new Uint8Array(IF_NAMESIZE);
  const p = loadLibc().if_indextoname(index, buffer);
  if (p === null) return undefined;
  return new TextDecoder().decode(buffer.subarray(0, buffer.indexOf(0)));
}

/** One IPv4/IPv6 address of a local interface. */
export interface LocalAddress {
  /** Interface name. */
  readonly name: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Raw address bytes (4 or 16), without scope. */
  readonly bytes: Uint8Array;
}

/** Error from getifaddrs/getaddrinfo, with the C function and its error text. */
export class HostLookupError extends Error {
  /**
   * A failed host lookup.
   * @param message one line: the C function and its error text
   * @param options `cause`, when there is one
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostLookupError";
  }
}

/**
 * Every IPv4/IPv6 address of every local interface (getifaddrs order), IPv6 without scope.
 * Throws {@link HostLookupError} when getifaddrs fails.
 */
export function localAddresses(): LocalAddress[] {
  const libc = loadLibc();
  const head = new BigUint64Array(1);
  if (libc.getifaddrs(head) !== 0) {
    throw new HostLookupError("getifaddrs() failed");
  }
  const first = Deno.UnsafePointer.create(head[0]);
  const out: LocalAddress[] = [];
  try {
    // struct ifaddrs { ifa_next @0; ifa_name @8; ifa_flags @16; ifa_addr @24; ifa_netmask @32; ... }
    for (let p = first; p !== null;) {
      const node = new Deno.UnsafePointerView(p);
      const namePointer = node.getPointer(8);
      const addrPointer = node.getPointer(24);
      if (namePointer !== null && addrPointer !== null) {
        const raw = new Deno.UnsafePointerView(addrPointer);
        const family = raw.getUint16(0);
        const size = family === AF_INET ? 16 : family === AF_INET6 ? SOCKADDR_MAX : 0;
        if (size > 0) {
          const bytes = new Uint8Array(size);
          raw.copyInto(bytes);
          const decoded = decodeSockaddr(new DataView(bytes.buffer));
          if (decoded) {
            out.push({
              name: Deno.UnsafePointerView.getCString(namePointer),
              family: decoded.family,
              bytes: decoded.bytes,
            });
          }
        }
      }
      p = node.getPointer(0);
    }
  } finally {
    libc.freeifaddrs(first);
  }
  return out;
}

// ---- getaddrinfo -------------------------------------------------------------------------------------------

/** sizeof(struct addrinfo) on 64-bit glibc. */
const ADDRINFO_SIZE = 48;

function hints(flags: number): Uint8Array<ArrayBuffer> {
  // struct addrinfo { ai_flags @0; ai_family @4; ai_socktype @8; ai_protocol @12; ai_addrlen @16;
  //                   ai_addr @24; ai_canonname @32; ai_next @40 }
  const bytes = new Uint8Array(ADDRINFO_SIZE);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, flags, true);
  view.setInt32(4, AF_UNSPEC, true);
  view.setInt32(8, SOCK_DGRAM, true);
  return bytes;
}

/** Walks a getaddrinfo result list, frees it and returns the decoded addresses in order. */
function collect(head: bigint): SocketAddress[] {
  const libc = loadLibc();
  const first = Deno.UnsafePointer.create(head);
  const out: SocketAddress[] = [];
  try {
    for (let p = first; p !== null;) {
      const node = new Deno.UnsafePointerView(p);
      const length = node.getUint32(16);
      const addrPointer = node.getPointer(24);
      if (addrPointer !== null && length >= 16 && length <= SOCKADDR_MAX) {
        const bytes = new Uint8Array(SOCKADDR_MAX);
        new Deno.UnsafePointerView(addrPointer).copyInto(bytes.subarray(0, length));
        const decoded = decodeSockaddr(new DataView(bytes.buffer));
        if (decoded) out.push(decoded);
      }
      p = node.getPointer(40);
    }
  } finally {
    libc.freeaddrinfo(first);
  }
  return out;
}

function gaiText(code: number): string {
  const p = loadLibc().gai_strerror(code);
  return p === null ? `EAI ${code}` : Deno.UnsafePointerView.getCString(p);
}

/** EAI_NONAME, EAI_NODATA, EAI_SERVICE, EAI_ADDRFAMILY: "does not resolve", not an error. */
const NOT_FOUND = new Set([-2, -5, -8, -9]);

/**
 * getaddrinfo(node, NULL, {AF_UNSPEC, SOCK_DGRAM}) on a worker thread: the node's addresses (raw bytes) in
 * resolver order, duplicates removed, without scope. Empty when the name does not resolve; throws
 * {@link HostLookupError} for other failures (e.g. EAI_AGAIN, a temporary DNS failure).
 */
export async function resolveHostAddresses(node: string): Promise<Uint8Array[]> {
  const nodeBuffer = cString(node);
  const hintBuffer = hints(0);
  const result = new BigUint64Array(1);
  const code = await loadLibc().getaddrinfo_async(nodeBuffer, null, hintBuffer, result);
  if (code !== 0) {
    if (NOT_FOUND.has(code)) return [];
    throw new HostLookupError(`getaddrinfo("${node}") failed: ${gaiText(code)}`);
  }
  const unique = new Map<string, Uint8Array>();
  for (const { bytes } of collect(result[0])) unique.set(bytes.join(","), bytes);
  return [...unique.values()];
}

/** AI_PASSIVE: with a null node, return the wildcard address (we only read the port). */
const AI_PASSIVE = 0x1;

/**
 * getaddrinfo(NULL, service, {AF_UNSPEC, SOCK_DGRAM, AI_PASSIVE}): the UDP port of a service name or number
 * (names come from /etc/services through NSS), or undefined when it is not one.
 */
export function servicePortNumber(service: string): number | undefined {
  if (service.length === 0 || service.includes("\0")) return undefined;
  const result = new BigUint64Array(1);
  const code = loadLibc().getaddrinfo(null, cString(service), hints(AI_PASSIVE), result);
  if (code !== 0) return undefined;
  return collect(result[0])[0]?.port;
}
