/**
 * Jool's Generic Netlink messages as joold uses them (docs/protocol.md §1–§4): the requests the
 * daemon builds byte by byte, and the parser for everything the kernel sends it. Pure: no I/O.
 * @module
 */
import {
  type Attribute,
  attributeSize,
  GENL_HDRLEN,
  HOST_LITTLE_ENDIAN,
  NLA_F_NESTED,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_MIN_TYPE,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  parseAttributes,
  readGenlHeader,
  readNetlinkHeader,
  readString,
  readU16,
  u8,
  viewOf,
  writeAttribute,
  writeGenlHeader,
  writeNetlinkHeader,
} from "./netlink.ts";
import {
  JOOL_HDRLEN,
  type JoolHeader,
  JOOLNLHDR_FLAGS_ERROR,
  JOOLNLHDR_FLAGS_M,
  type JoolVersion,
  readJoolHeader,
  writeJoolHeader,
  XT_NAT64,
} from "./header.ts";

/** `enum joolnl_operation` values joold uses (identical 4.1.9 → 4.1.15; the 4.2 rc renumbers them). */
export const JNLOP_GLOBAL_FOREACH = 8;
/** JOOLD_ADD: sessions from a peer, daemon → kernel (docs/protocol.md §4). */
export const JNLOP_JOOLD_ADD = 27;
/** JOOLD_ADVERTISE: asks the kernel to resend its whole session table. */
export const JNLOP_JOOLD_ADVERTISE = 28;
/** JOOLD_ACK: "batch received, send the next one" (docs/protocol.md §3). */
export const JNLOP_JOOLD_ACK = 29;

/** Top-level attributes (`enum joolnl_attr_root`). */
export const JNLAR_SESSION_ENTRIES = 7;
/** Root attribute OFFSET_U8: where a continued GLOBAL_FOREACH resumes. */
export const JNLAR_OFFSET_U8 = 9;
/** Error reply attributes. */
export const JNLAERR_CODE = 1;
/** Error-reply attribute MSG: NUL-terminated text. */
export const JNLAERR_MSG = 2;
/** Global `ss-enabled` (`JNLAG_JOOLD_ENABLED`), a u8 attribute at the top level of GLOBAL_FOREACH replies. */
export const JNLAG_JOOLD_ENABLED = 27;

/** The genl version userspace requests carry (libnl's `genlmsg_put` callers in Jool pass 1). */
export const GENL_REQUEST_VERSION = 1;

/** Offset of the first attribute in any Jool message. */
export const JOOL_ATTRS_OFFSET: number = NLMSG_HDRLEN + GENL_HDRLEN + JOOL_HDRLEN;

/** What every request needs besides its command. */
export interface RequestContext {
  /** Generic Netlink family id of "Jool". */
  readonly familyId: number;
  /** Our netlink port (nlmsg_pid). */
  readonly pid: number;
  /** nlmsg_seq. */
  readonly seq: number;
  /** Version announced in the Jool header. */
  readonly version: JoolVersion;
  /** Instance name (validated: ≤15 bytes, no control characters). */
  readonly instance: string;
}

/** Builds one request: nlmsghdr (NLM_F_REQUEST only) + genl header + Jool header (xt NAT64) + attributes. */
export function buildRequest(
  context: RequestContext,
  cmd: number,
  attributes: readonly { type: number; payload: Uint8Array }[] = [],
  flags = 0,
): Uint8Array {
  const length = JOOL_ATTRS_OFFSET + attributes.reduce((n, a) => n + attributeSize(a.payload.length), 0);
  const out = new Uint8Array(length);
  writeNetlinkHeader(out, {
    length,
    type: context.familyId,
    flags: NLM_F_REQUEST,
    seq: context.seq,
    pid: context.pid,
  });
  writeGenlHeader(out, NLMSG_HDRLEN, { cmd, version: GENL_REQUEST_VERSION, reserved: 0 });
  writeJoolHeader(out, NLMSG_HDRLEN + GENL_HDRLEN, {
    version: context.version,
    xt: XT_NAT64,
    flags,
    iname: context.instance,
  });
  let at = JOOL_ATTRS_OFFSET;
  for (const a of attributes) at = writeAttribute(out, at, a.type, a.payload);
  return out;
}

/**
 * JOOLD_ADD (cmd 27): one root attribute SESSION_ENTRIES with NLA_F_NESTED (0x8007, required by strict
 * kernels) whose payload is `payload` verbatim, zero-padded to 4. The payload must already be validated.
 */
export function encodeJooldAdd(context: RequestContext, payload: Uint8Array): Uint8Array {
  return buildRequest(context, JNLOP_JOOLD_ADD, [{ type: NLA_F_NESTED | JNLAR_SESSION_ENTRIES, payload }]);
}

/** JOOLD_ACK (cmd 29): 48 bytes, no attributes. */
export function encodeJooldAck(context: RequestContext): Uint8Array {
  return buildRequest(context, JNLOP_JOOLD_ACK);
}

/** JOOLD_ADVERTISE (cmd 28): no attributes; the kernel answers with an empty success reply or an error. */
export function encodeJooldAdvertise(context: RequestContext): Uint8Array {
  return buildRequest(context, JNLOP_JOOLD_ADVERTISE);
}

/**
 * GLOBAL_FOREACH (cmd 8), the start-up probe: the kernel answers ESRCH when the instance does not exist,
 * EPERM without CAP_NET_ADMIN, else the globals as top-level attributes (type = JNLAG id), with flag M when
 * more follow; the next request then carries OFFSET_U8 = the last global id received.
 */
export function encodeGlobalForeach(context: RequestContext, offset?: number): Uint8Array {
  return buildRequest(
    context,
    JNLOP_GLOBAL_FOREACH,
    offset === undefined ? [] : [{ type: JNLAR_OFFSET_U8, payload: u8(offset) }],
  );
}

/** Why a kernel message is unusable; names match the stats drop reasons. */
export type KernelMessageProblem = "kernel_bad_message" | "kernel_no_container";

/** One netlink message from the kernel, classified. */
export type KernelMessage =
  /** A session batch (a multicast): the container's payload, verbatim. */
  | {
    readonly kind: "batch";
    readonly header: JoolHeader;
    readonly seq: number;
    readonly pid: number;
    readonly payload: Uint8Array;
  }
  /** A Jool error reply (header flag ERROR): code = positive errno. */
  | {
    readonly kind: "jool_error";
    readonly header: JoolHeader;
    readonly seq: number;
    readonly code: number;
    readonly message: string;
  }
  /** A Jool reply without the ERROR flag and without a session container (ADVERTISE success, globals). */
  | {
    readonly kind: "jool_reply";
    readonly header: JoolHeader;
    readonly seq: number;
    readonly pid: number;
    /** Flag M: more data follows in another request. */
    readonly more: boolean;
    readonly attributes: readonly Attribute[];
  }
  /** NLMSG_ERROR: `error` is the positive errno (0 = a netlink ACK). */
  | { readonly kind: "netlink_error"; readonly seq: number; readonly error: number }
  | { readonly kind: "done" | "noop" | "overrun"; readonly seq: number }
  /** A Jool-family message that cannot be used. */
  | {
    readonly kind: "invalid";
    readonly problem: KernelMessageProblem;
    readonly detail: string;
    /** Its Jool header, when that much was readable. */
    readonly header?: JoolHeader;
  }
  /** Some other netlink type (not the Jool family). */
  | { readonly kind: "other"; readonly type: number };

/**
 * Classifies one netlink message (header included) received from the kernel. Any genl `cmd` is accepted
 * (kernel messages carry 0). Checks: length, magic, xt = NAT64, attributes well-formed. The version is not
 * judged here: the caller compares it with what it expects.
 */
export function parseKernelMessage(message: Uint8Array, familyId: number): KernelMessage {
  if (message.length < NLMSG_HDRLEN) {
    return { kind: "invalid", problem: "kernel_bad_message", detail: "shorter than a netlink header" };
  }
  const nl = readNetlinkHeader(message);
  const body = message.subarray(NLMSG_HDRLEN, Math.min(nl.length, message.length));
  switch (nl.type) {
    case NLMSG_ERROR: {
      if (body.length < 4) {
        return { kind: "invalid", problem: "kernel_bad_message", detail: "NLMSG_ERROR without its code" };
      }
      const code = viewOf(body).getInt32(0, HOST_LITTLE_ENDIAN);
      return { kind: "netlink_error", seq: nl.seq, error: Math.abs(code) };
    }
    case NLMSG_DONE:
      return { kind: "done", seq: nl.seq };
    case NLMSG_NOOP:
      return { kind: "noop", seq: nl.seq };
    case NLMSG_OVERRUN:
      return { kind: "overrun", seq: nl.seq };
  }
  if (nl.type < NLMSG_MIN_TYPE || nl.type !== familyId) return { kind: "other", type: nl.type };
  if (body.length < GENL_HDRLEN + JOOL_HDRLEN) {
    return {
      kind: "invalid",
      problem: "kernel_bad_message",
      detail: `message too short to contain headers (${nl.length} bytes)`,
    };
  }
  readGenlHeader(body, 0); // any cmd and version: kernel messages carry cmd 0, version 2
  const parsed = readJoolHeader(body, GENL_HDRLEN);
  if (!parsed.ok) return { kind: "invalid", problem: "kernel_bad_message", detail: parsed.error };
  const header = parsed.header;
  if (header.xt !== XT_NAT64) {
    return {
      kind: "invalid",
      problem: "kernel_bad_message",
      detail: `translator type ${header.xt}, not NAT64`,
      header,
    };
  }
  const attrs = parseAttributes(body.subarray(GENL_HDRLEN + JOOL_HDRLEN));
  if (!attrs.ok) return { kind: "invalid", problem: "kernel_bad_message", detail: attrs.error, header };
  const attributes = attrs.attributes;
  if (header.flags & JOOLNLHDR_FLAGS_ERROR) {
    const codeAttr = attributes.find((a) => a.type === JNLAERR_CODE);
    const msgAttr = attributes.find((a) => a.type === JNLAERR_MSG);
    return {
      kind: "jool_error",
      header,
      seq: nl.seq,
      code: (codeAttr && readU16(codeAttr.payload)) ?? 0,
      message: msgAttr ? readString(msgAttr.payload) : "",
    };
  }
  const first = attributes[0];
  if (first?.type === JNLAR_SESSION_ENTRIES) {
    return { kind: "batch", header, seq: nl.seq, pid: nl.pid, payload: first.payload };
  }
  return {
    kind: "jool_reply",
    header,
    seq: nl.seq,
    pid: nl.pid,
    more: (header.flags & JOOLNLHDR_FLAGS_M) !== 0,
    attributes,
  };
}

/** Reads `ss-enabled` from a GLOBAL_FOREACH reply's attributes, if present. */
export function ssEnabledOf(attributes: readonly Attribute[]): boolean | undefined {
  const a = attributes.find((x) => x.type === JNLAG_JOOLD_ENABLED);
  return a && a.payload.length >= 1 ? a.payload[0] !== 0 : undefined;
}

/** The genl command of a message we built (for the double and tests). */
export function commandOf(message: Uint8Array): number | undefined {
  return message.length >= NLMSG_HDRLEN + GENL_HDRLEN ? message[NLMSG_HDRLEN] : undefined;
}
