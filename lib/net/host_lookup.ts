/**
 * What config validation needs to know about this host: interfaces, host names and services.
 * The real implementation is `lib/net/libc_host_lookup.ts` (getaddrinfo/if_nametoindex through FFI);
 * tests pass a fake.
 * @module
 */

/** One address of a local interface. */
export interface InterfaceAddress {
  /** Interface name. */
  readonly name: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Address text, IPv6 without scope. */
  readonly address: string;
}

/** Host facts used to validate netsocket.json. */
export interface HostLookup {
  /** Index of the interface with that name, or undefined when there is none. */
  interfaceIndex(name: string): number | undefined;
  /** Every address of every local interface. */
  interfaceAddresses(): InterfaceAddress[];
  /**
   * Resolves a host name (or literal) to addresses, like getaddrinfo with AF_UNSPEC/SOCK_DGRAM.
   * Returns an empty list when it does not resolve.
   */
  resolveHost(name: string): Promise<string[]>;
  /** UDP port of a service name (/etc/services), or undefined. */
  servicePort(name: string): number | undefined;
}
