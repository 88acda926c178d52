/**
 * Ingress filtering of the net channel (`"accept from"`, docs/protocol.md §12): which datagrams may be read at
 * all, decided from their source address and the interface they arrived on, before any byte of the payload is
 * looked at. Pure: prefixes are parsed from text and matched against raw address bytes.
 *
 * What it is worth: a source address can be forged, so the filter does not authenticate (the `"key file"` does).
 * It keeps out every host on the sync link (or routed to it) that is not a listed peer, and the interface check
 * keeps out every datagram that entered the router by another interface, whatever source it claims.
 * @module
 */
import { addressBytes, addressText } from "./address.ts";

/** A parsed prefix: network bytes (host bits zero) and length. */
export interface Prefix {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Network address bytes (4 or 16). */
  readonly bytes: Uint8Array;
  /** Prefix length, 0–32 or 0–128. */
  readonly length: number;
}

/** Why a prefix text was refused (a phrase for a config error) plus, where useful, the text to write instead. */
export interface PrefixProblem {
  /** What is wrong. */
  readonly problem: string;
  /** The corrected text, when there is an obvious one (host bits cleared). */
  readonly suggestion?: string;
}

/**
 * Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Refuses a length out of range or
 * not a plain decimal, and host bits set (e.g. "192.0.2.1/24": a typo for the host or for the network, and
 * either reading would be a guess).
 */
export function parsePrefix(text: string): Prefix | PrefixProblem {
  const slash = text.indexOf("/");
  const addressPart = slash < 0 ? text : text.slice(0, slash);
  const bytes = addressBytes(addressPart);
  if (!bytes) return { problem: "not an IPv4/IPv6 address or prefix" };
  const family = bytes.length === 4 ? 4 : 6;
  const max = bytes.length * 8;
  let length = max;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > max) {
      return { problem: `the prefix length must be a whole number from 0 to ${max}` };
    }
    length = Number(lengthText);
  }
  const network = maskBytes(bytes, length);
  if (!network.every((b, i) => b === bytes[i])) {
    return {
      problem: `host bits are set after the first ${length} bits`,
      suggestion: `${addressText(network)}/${length}`,
    };
  }
  return { family, bytes: network, length };
}

/** True when the value is a {@link Prefix} (not a {@link PrefixProblem}). */
export function isPrefix(value: Prefix | PrefixProblem): value is Prefix {
  return "bytes" in value;
}

/** The prefix as text, "network/length". */
export function prefixText(prefix: Prefix): string {
  return `${addressText(prefix.bytes)}/${prefix.length}`;
}

/** `bytes` with every bit after the first `length` cleared (a copy). */
function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, length - 8 * i));
    out[i] = bytes[i] & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

/** True when `address` (4 or 16 bytes) lies in `prefix`; an address of the other family never does. */
export function prefixContains(prefix: Prefix, address: Uint8Array): boolean {
  if (address.length !== prefix.bytes.length) return false;
  const whole = prefix.length >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== prefix.bytes[i]) return false;
  const rest = prefix.length & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (address[whole] & mask) === prefix.bytes[whole];
}

/** What {@link IngressFilter.check} decided: undefined to accept, else the drop reason. */
export type IngressVerdict = undefined | "net_source_refused" | "net_wrong_interface";

/** The accepted sources and, optionally, the one interface datagrams must arrive on. */
export class IngressFilter {
  /**
   * A filter over these prefixes and, optionally, one interface.
   * @param accept the accepted prefixes (at least one)
   * @param interfaceIndex when set, a datagram must have arrived on this interface (index from IP_PKTINFO)
   */
  constructor(readonly accept: readonly Prefix[], readonly interfaceIndex?: number) {}

  /**
   * Decides on one datagram. `source` is its source address (4 or 16 bytes; an IPv4-mapped IPv6 source, as a
   * dual-stack socket reports IPv4 senders, is matched as the IPv4 address it holds). `arrivedOn` is the
   * interface index from the packet info, or undefined when the kernel gave none: with an interface to check,
   * that datagram is refused, since its interface cannot be shown to be the right one.
   */
  check(source: Uint8Array, arrivedOn: number | undefined): IngressVerdict {
    const address = unmapped(source);
    if (!this.accept.some((prefix) => prefixContains(prefix, address))) return "net_source_refused";
    if (this.interfaceIndex !== undefined && arrivedOn !== this.interfaceIndex) return "net_wrong_interface";
    return undefined;
  }
}

/** ::ffff:a.b.c.d → a.b.c.d; any other address as it is. */
function unmapped(address: Uint8Array): Uint8Array {
  if (address.length !== 16) return address;
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return address;
  if (address[10] !== 0xff || address[11] !== 0xff) return address;
  return address.subarray(12);
}
