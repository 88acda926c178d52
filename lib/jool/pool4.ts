/**
 * Jool's pool4 listing (POOL4_FOREACH, docs/protocol.md §11.1): the request joold sends to read the local
 * instance's pool4 and the decoder of the kernel's reply. Pure: no I/O. Identical on the wire from Jool 4.1.9 to
 * 4.1.15.
 *
 * One request lists one protocol's table. The first request names the protocol (root attribute PROTO, u8);
 * the reply holds entries as root attributes of type JNLAL_ENTRY (1), each a nest of mark, iterations, flags,
 * protocol, prefix (a nest of address and length) and port range. When the reply has flag M ("more"), the next
 * request carries, instead of PROTO, the last entry received as root attribute OFFSET (a nest of the same
 * shape); the kernel resumes after the entry of that mark whose prefix and port range are equal, or answers
 * EAGAIN ("Pool4 changed while I was iterating") when that entry is gone.
 * @module
 */
import {
  type Attribute,
  encodeAttributes,
  NLA_F_NESTED,
  parseAttributes,
  readU16,
  readU32,
  u16,
  u32,
  u8,
  viewOf,
} from "./netlink.ts";
import { buildRequest, parseKernelMessage, type RequestContext } from "./messages.ts";

/** `enum joolnl_operation`: POOL4_FOREACH. */
export const JNLOP_POOL4_FOREACH = 18;
/** Root attribute OFFSET: where a continued foreach resumes (a nested entry). */
export const JNLAR_OFFSET = 8;
/** Root attribute PROTO: the protocol table the first request lists (u8). */
export const JNLAR_PROTO = 11;
/** Each listed entry: root attribute JNLAL_ENTRY, nested. */
export const JNLAL_ENTRY = 1;

/** Attributes inside a pool4 entry (`enum joolnl_attr_pool4`). */
export const JNLAP4_MARK = 1;
/** Max iterations (u32). */
export const JNLAP4_ITERATIONS = 2;
/** Iteration flags (u8). */
export const JNLAP4_FLAGS = 3;
/** Protocol (u8): 0 TCP, 1 UDP, 2 ICMP. */
export const JNLAP4_PROTO = 4;
/** The IPv4 prefix (nested: JNLAP_ADDR, JNLAP_LEN). */
export const JNLAP4_PREFIX = 5;
/** First port or ICMP identifier of the range (u16, host order). */
export const JNLAP4_PORT_MIN = 6;
/** Last port or ICMP identifier of the range (u16, host order). */
export const JNLAP4_PORT_MAX = 7;
/** Inside a prefix: the address (4 bytes, network order). */
export const JNLAP_ADDR = 1;
/** Inside a prefix: the length (u8, 0–32). */
export const JNLAP_LEN = 2;

/** One pool4 entry as the kernel lists it: a prefix and a port range, in one mark's table of one protocol. */
export interface Pool4Entry {
  /** The packet mark that selects this entry's table. */
  readonly mark: number;
  /** Max iterations (meaningful only with some `flags`). */
  readonly iterations: number;
  /** Iteration flags (ITERATIONS_SET/AUTO/INFINITE). */
  readonly flags: number;
  /** 0 TCP, 1 UDP, 2 ICMP. */
  readonly proto: number;
  /** The prefix's address as an unsigned 32-bit number (first octet most significant). */
  readonly address: number;
  /** Prefix length, 0–32. */
  readonly prefixLength: number;
  /** First port (ICMP: identifier) of the range. */
  readonly portMin: number;
  /** Last port (ICMP: identifier) of the range. */
  readonly portMax: number;
}

/**
 * POOL4_FOREACH: the first request of a protocol's listing (`offset` undefined: root attribute PROTO) or a
 * continuation after flag M (`offset` = the last entry received: root attribute OFFSET, nested, as Jool's own
 * client sends it).
 */
export function encodePool4Foreach(context: RequestContext, proto: number, offset?: Pool4Entry): Uint8Array {
  return buildRequest(
    context,
    JNLOP_POOL4_FOREACH,
    offset === undefined
      ? [{ type: JNLAR_PROTO, payload: u8(proto) }]
      : [{ type: NLA_F_NESTED | JNLAR_OFFSET, payload: encodePool4EntryAttributes(offset) }],
  );
}

/** The attributes inside one entry's nest, in the kernel's order (also the OFFSET nest's content). */
export function encodePool4EntryAttributes(entry: Pool4Entry): Uint8Array {
  const address = new Uint8Array(4);
  viewOf(address).setUint32(0, entry.address, false);
  return encodeAttributes([
    { type: JNLAP4_MARK, payload: u32(entry.mark) },
    { type: JNLAP4_ITERATIONS, payload: u32(entry.iterations) },
    { type: JNLAP4_FLAGS, payload: u8(entry.flags) },
    { type: JNLAP4_PROTO, payload: u8(entry.proto) },
    {
      type: NLA_F_NESTED | JNLAP4_PREFIX,
      payload: encodeAttributes([
        { type: JNLAP_ADDR, payload: address },
        { type: JNLAP_LEN, payload: u8(entry.prefixLength) },
      ]),
    },
    { type: JNLAP4_PORT_MIN, payload: u16(entry.portMin) },
    { type: JNLAP4_PORT_MAX, payload: u16(entry.portMax) },
  ]);
}

/** What one reply message to POOL4_FOREACH says. */
export type Pool4Reply =
  /** Entries of the asked table; `more`: ask again with the last one as offset. */
  | { readonly kind: "entries"; readonly entries: readonly Pool4Entry[]; readonly more: boolean }
  /** The kernel refused (Jool error reply or NLMSG_ERROR): positive errno and Jool's text when any. */
  | { readonly kind: "error"; readonly code: number; readonly message: string }
  /** Not an answer we can use (malformed, or an entry without a field Jool always sends). */
  | { readonly kind: "invalid"; readonly detail: string }
  /** Not an answer to this request (another sequence number, another family): skip it. */
  | { readonly kind: "unrelated" };

/**
 * Decodes one netlink message received after a POOL4_FOREACH whose sequence number was `seq`. Every field of
 * every entry must be present and well-formed (the kernel always sends all seven, from 4.1.9 on); a prefix
 * longer than 32 bits is invalid. A range listed with min > max is normalised (Jool swaps them when adding).
 */
export function decodePool4Reply(message: Uint8Array, familyId: number, seq: number): Pool4Reply {
  const parsed = parseKernelMessage(message, familyId);
  switch (parsed.kind) {
    case "netlink_error":
      if (parsed.seq !== seq) return { kind: "unrelated" };
      return parsed.error === 0
        ? { kind: "invalid", detail: "a netlink ACK instead of a reply" }
        : { kind: "error", code: parsed.error, message: "" };
    case "jool_error":
      if (parsed.seq !== seq) return { kind: "unrelated" };
      return { kind: "error", code: parsed.code, message: parsed.message };
    case "jool_reply": {
      if (parsed.seq !== seq) return { kind: "unrelated" };
      const entries: Pool4Entry[] = [];
      for (const attribute of parsed.attributes) {
        if (attribute.type !== JNLAL_ENTRY) {
          return { kind: "invalid", detail: `root attribute ${attribute.type} in a pool4 listing` };
        }
        const entry = decodePool4Entry(attribute.payload);
        if (typeof entry === "string") {
          return { kind: "invalid", detail: `entry ${entries.length}: ${entry}` };
        }
        entries.push(entry);
      }
      return { kind: "entries", entries, more: parsed.more };
    }
    case "batch":
      // A SESSION_ENTRIES root attribute: a multicast, which this socket never joins; not an answer.
      return { kind: "unrelated" };
    case "invalid":
      return { kind: "invalid", detail: parsed.detail };
    default:
      return { kind: "unrelated" };
  }
}

/** Decodes one entry nest's content; returns what is wrong as text. */
export function decodePool4Entry(bytes: Uint8Array): Pool4Entry | string {
  const parsed = parseAttributes(bytes);
  if (!parsed.ok) return parsed.error;
  const field = (type: number, name: string, size: number): Attribute | string => {
    const found = parsed.attributes.find((a) => a.type === type);
    if (!found) return `no ${name}`;
    if (found.payload.length < size) return `${name} is ${found.payload.length} bytes; expected ${size}`;
    return found;
  };
  const mark = field(JNLAP4_MARK, "mark", 4);
  const iterations = field(JNLAP4_ITERATIONS, "iterations", 4);
  const flags = field(JNLAP4_FLAGS, "flags", 1);
  const proto = field(JNLAP4_PROTO, "protocol", 1);
  const prefix = field(JNLAP4_PREFIX, "prefix", 0);
  const portMin = field(JNLAP4_PORT_MIN, "minimum port", 2);
  const portMax = field(JNLAP4_PORT_MAX, "maximum port", 2);
  for (const f of [mark, iterations, flags, proto, prefix, portMin, portMax]) {
    if (typeof f === "string") return f;
  }
  const prefixAttrs = parseAttributes((prefix as Attribute).payload);
  if (!prefixAttrs.ok) return `prefix: ${prefixAttrs.error}`;
  const addr = prefixAttrs.attributes.find((a) => a.type === JNLAP_ADDR);
  const len = prefixAttrs.attributes.find((a) => a.type === JNLAP_LEN);
  if (!addr || addr.payload.length !== 4) return "prefix without a 4-byte address";
  if (!len || len.payload.length < 1) return "prefix without a length";
  if (len.payload[0] > 32) return `prefix length ${len.payload[0]}; expected 0–32`;
  const low = readU16((portMin as Attribute).payload)!;
  const high = readU16((portMax as Attribute).payload)!;
  return {
    mark: readU32((mark as Attribute).payload)!,
    iterations: readU32((iterations as Attribute).payload)!,
    flags: (flags as Attribute).payload[0],
    proto: (proto as Attribute).payload[0],
    address: viewOf(addr.payload).getUint32(0, false),
    prefixLength: len.payload[0],
    portMin: Math.min(low, high),
    portMax: Math.max(low, high),
  };
}
