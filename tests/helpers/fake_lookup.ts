/** A HostLookup with fixed answers, for config tests. */
import type { HostLookup, InterfaceAddress } from "../../lib/net/host_lookup.ts";

export const FAKE_INTERFACES: InterfaceAddress[] = [
  { name: "lo", family: 4, address: "127.0.0.1" },
  { name: "lo", family: 6, address: "::1" },
  { name: "eth0", family: 4, address: "192.0.2.1" },
  { name: "eth0", family: 6, address: "2001:db8::1" },
  { name: "eth1", family: 4, address: "198.51.100.1" },
];

export const fakeLookup: HostLookup = {
  interfaceIndex: (name) => ({ lo: 1, eth0: 2, eth1: 3 } as Record<string, number>)[name],
  interfaceAddresses: () => FAKE_INTERFACES,
  resolveHost: (name) =>
    Promise.resolve(
      ({ "sync-group.example": ["233.252.0.64"], "unicast.example": ["192.0.2.80"] } as Record<
        string,
        string[]
      >)[name] ??
        [],
    ),
  servicePort: (name) => ({ domain: 53, joold: 6464 } as Record<string, number>)[name],
};
