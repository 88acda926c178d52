/**
 * Pure IP-address helpers for config validation: literal parsing and multicast scope rules.
 * @module
 */
import { ipv4Bytes, ipv6Bytes } from "../net/address.ts";

/** Parses a dotted-quad IPv4 literal; undefined when it is not one. */
export const parseIPv4: (text: string) => Uint8Array | undefined = ipv4Bytes;

/** Parses an IPv6 literal (no scope, no brackets); undefined when it is not one. */
export const parseIPv6: (text: string) => Uint8Array | undefined = ipv6Bytes;

/** Family of a literal address, or undefined when the text is not a literal. */
export function literalFamily(text: string): 4 | 6 | undefined {
  if (parseIPv4(text)) return 4;
  if (parseIPv6(text)) return 6;
  return undefined;
}

/** True for 224.0.0.0/4 and ff00::/8. */
export function isMulticast(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4) return v4[0] >= 224 && v4[0] <= 239;
  const v6 = parseIPv6(address);
  return v6 !== undefined && v6[0] === 0xff;
}

/** True for IPv6 multicast groups whose scope needs an interface (interface-local ff?1, link-local ff?2). */
export function needsScope(address: string): boolean {
  const v6 = parseIPv6(address);
  if (!v6 || v6[0] !== 0xff) return false;
  const scope = v6[1] & 0x0f;
  return scope === 1 || scope === 2;
}
