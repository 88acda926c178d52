/**
 * The real {@link HostLookup}: interfaces, host names and services of this host through libc (FFI), so the
 * daemon needs no `--allow-sys` and resolves names exactly like upstream joold (getaddrinfo with AF_UNSPEC and
 * SOCK_DGRAM; services from /etc/services through NSS).
 * @module
 */
import { interfaceIndex, localAddresses, resolveHostAddresses, servicePortNumber } from "../../ffi/host.ts";
import { addressText } from "./address.ts";
import type { HostLookup, InterfaceAddress } from "./host_lookup.ts";

/** Host facts from libc: if_nametoindex, getifaddrs, getaddrinfo. */
export class LibcHostLookup implements HostLookup {
  /** if_nametoindex(); undefined when there is no such interface. */
  interfaceIndex(name: string): number | undefined {
    return interfaceIndex(name);
  }

  /** getifaddrs(): every IPv4/IPv6 address of every interface. */
  interfaceAddresses(): InterfaceAddress[] {
    return localAddresses().map(({ name, family, bytes }) => ({ name, family, address: addressText(bytes) }));
  }

  /**
   * getaddrinfo(name, NULL, {AF_UNSPEC, SOCK_DGRAM}) on a worker thread; empty when the name does not resolve.
   * Rejects with the resolver's message for temporary failures (e.g. DNS unreachable).
   */
  async resolveHost(name: string): Promise<string[]> {
    return (await resolveHostAddresses(name)).map(addressText);
  }

  /** getaddrinfo(NULL, name, {SOCK_DGRAM}): the UDP port of a service name or number, or undefined. */
  servicePort(name: string): number | undefined {
    return servicePortNumber(name);
  }
}
