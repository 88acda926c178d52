/**
 * The byte-level recognizer of a plain batch: the datagrams the kernel thread may ACK the moment it has read
 * them, before parsing them in full (why and when: `lib/kernel/ack_rule.ts`). A small, allocation-free subset
 * of what the full parse and the ACK rule decide: every datagram it accepts is one the full path would ACK
 * anyway; anything else — other instances, error replies, unsupported versions, several messages in one
 * datagram — is left to the full path.
 * @module
 */
import { GENL_HDRLEN, HOST_LITTLE_ENDIAN, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from "./netlink.ts";
import { INAME_SIZE, JOOL_HDRLEN, JOOL_MAGIC, JOOLNLHDR_FLAGS_ERROR, XT_NAT64 } from "./header.ts";
import { JNLAR_SESSION_ENTRIES } from "./messages.ts";

/** Offsets inside a kernel datagram: nlmsghdr, genlmsghdr, then the Jool header (docs/protocol.md §1.3). */
const JOOL_AT = NLMSG_HDRLEN + GENL_HDRLEN;
const VERSION_AT = JOOL_AT + 4;
const XT_AT = JOOL_AT + 8;
const FLAGS_AT = JOOL_AT + 9;
const INAME_AT = JOOL_AT + 12;
const FIRST_ATTRIBUTE_AT = JOOL_AT + JOOL_HDRLEN;

/** Where a plain batch's session entries start: right after its container's attribute header. */
export const PLAIN_BATCH_PAYLOAD_AT: number = FIRST_ATTRIBUTE_AT + NLA_HDRLEN;

/**
 * For a datagram {@link ackableBatchVersion} accepted: the end of its session entries when the full parse would
 * find exactly that — the container its only attribute and nothing after the message but its padding — else 0
 * (the full parse then decides). Lets the kernel channel take a plain batch's entries without parsing it again
 * into objects (`lib/kernel/channel.ts`).
 */
export function plainBatchPayloadEnd(datagram: Uint8Array): number {
  const length = hostU32(datagram, 0);
  const end = FIRST_ATTRIBUTE_AT + hostU16(datagram, FIRST_ATTRIBUTE_AT);
  return align4(length) >= datagram.length && align4(end) >= length ? end : 0;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * An instance name prepared for {@link ackableBatchVersion}: its bytes lower-cased (A–Z only, like the kernel
 * side's strcasecmp), "" standing for "default", NUL-terminated.
 */
export type InstanceKey = Uint8Array;

/** Prepares `instance` for {@link ackableBatchVersion}. */
export function instanceKey(instance: string): InstanceKey {
  const bytes = new TextEncoder().encode(instance === "" ? "default" : instance);
  const key = new Uint8Array(bytes.length + 1);
  for (let i = 0; i < bytes.length; i++) key[i] = lowerAscii(bytes[i]);
  return key;
}

/**
 * The packed Jool version (header u32, never 0 for 4.1.x) of `datagram` when it is exactly one Jool multicast
 * (pid 0) of family `familyId` for the instance `key`, Jool 4.1.x but not the 4.2 rc (4.1.255), NAT64, without
 * the error flag, whose first attribute is the session container; otherwise 0. `size`: the datagram's length
 * when it sits at the start of a larger buffer (the kernel thread checks it in its receive buffer, before any
 * copy).
 */
export function ackableBatchVersion(
  datagram: Uint8Array,
  familyId: number,
  key: InstanceKey,
  size: number = datagram.length,
): number {
  if (size < FIRST_ATTRIBUTE_AT + NLA_HDRLEN || size > datagram.length) return 0;
  const length = hostU32(datagram, 0);
  // Exactly one message: nlmsg_len covers the datagram but for the alignment padding of its end.
  if (length > size || length + 3 < size || length < FIRST_ATTRIBUTE_AT + NLA_HDRLEN) {
    return 0;
  }
  if (hostU16(datagram, 4) !== familyId || hostU32(datagram, 12) !== 0) return 0;
  for (let i = 0; i < 4; i++) if (datagram[JOOL_AT + i] !== JOOL_MAGIC[i]) return 0;
  const version = ((datagram[VERSION_AT] << 24) | (datagram[VERSION_AT + 1] << 16) |
    (datagram[VERSION_AT + 2] << 8) | datagram[VERSION_AT + 3]) >>> 0; // big-endian (docs/protocol.md §1.3)
  if (datagram[VERSION_AT] !== 4 || datagram[VERSION_AT + 1] !== 1 || datagram[VERSION_AT + 2] === 255) {
    return 0;
  }
  if (datagram[XT_AT] !== XT_NAT64 || (datagram[FLAGS_AT] & JOOLNLHDR_FLAGS_ERROR) !== 0) return 0;
  if (!sameIname(datagram, key)) return 0;
  const attributeLength = hostU16(datagram, FIRST_ATTRIBUTE_AT);
  const attributeType = hostU16(datagram, FIRST_ATTRIBUTE_AT + 2) & NLA_TYPE_MASK;
  if (attributeType !== JNLAR_SESSION_ENTRIES) return 0;
  if (attributeLength < NLA_HDRLEN || FIRST_ATTRIBUTE_AT + attributeLength > length) return 0;
  return version;
}

/** The header's instance name equals the key (an empty name meaning "default"), A–Z folded. */
function sameIname(datagram: Uint8Array, key: InstanceKey): boolean {
  if (datagram[INAME_AT] === 0) return sameBytes(DEFAULT_KEY, key);
  for (let i = 0; i < INAME_SIZE; i++) {
    const b = datagram[INAME_AT + i];
    if (lowerAscii(b) !== key[i]) return false;
    if (b === 0) return true;
  }
  return false; // no NUL within the field
}

const DEFAULT_KEY = instanceKey("default");

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Host-order u16/u32 read straight from the bytes: no DataView per datagram on the ACK path. */
function hostU16(b: Uint8Array, at: number): number {
  return HOST_LITTLE_ENDIAN ? b[at] | (b[at + 1] << 8) : (b[at] << 8) | b[at + 1];
}

function hostU32(b: Uint8Array, at: number): number {
  return HOST_LITTLE_ENDIAN
    ? (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0
    : ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function lowerAscii(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b + 32 : b;
}
