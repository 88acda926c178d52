/**
 * The kernel double's pool4: a {@link KernelQuerySocket} that answers POOL4_FOREACH as Jool 4.1.x does
 * (v4.1.15 src/mod/common/nl/pool4.c handle_pool4_foreach, db/pool4/db.c pool4db_foreach_sample): entries of
 * the asked protocol, ordered by mark, at most `pageSize` per reply with flag M when more follow; a request with
 * OFFSET resumes after the entry of that mark with that prefix and port range, or gets EAGAIN when it is gone.
 * Also the text form of a table for `--kernel-double-pool4=`.
 * @module
 */
import {
  encodeAttributes,
  GENL_HDRLEN,
  NLA_F_NESTED,
  NLMSG_HDRLEN,
  parseAttributes,
  readNetlinkHeader,
  u16,
  writeGenlHeader,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";
import { commandOf, JNLAERR_CODE, JNLAERR_MSG, JOOL_ATTRS_OFFSET } from "../../lib/jool/messages.ts";
import { JOOLNLHDR_FLAGS_ERROR, JOOLNLHDR_FLAGS_M } from "../../lib/jool/header.ts";
import {
  decodePool4Entry,
  encodePool4EntryAttributes,
  JNLAL_ENTRY,
  JNLAR_OFFSET,
  JNLAR_PROTO,
  JNLOP_POOL4_FOREACH,
  type Pool4Entry,
} from "../../lib/jool/pool4.ts";
import type { KernelQuerySocket } from "../../lib/kernel/transport.ts";

/** Family id the pool4 double reports (any value: it only has to match its own replies). */
export const POOL4_DOUBLE_FAMILY_ID = 0x22;

/** A reply message for `request`: its header copied, the flags given, these root attributes. */
export function replyTo(
  request: Uint8Array,
  familyId: number,
  flags: number,
  attributes: Uint8Array,
): Uint8Array {
  const req = readNetlinkHeader(request);
  const out = new Uint8Array(JOOL_ATTRS_OFFSET + attributes.length);
  writeNetlinkHeader(out, { length: out.length, type: familyId, flags: 0, seq: req.seq, pid: req.pid });
  writeGenlHeader(out, NLMSG_HDRLEN, { cmd: 0, version: 2, reserved: 0 });
  out.set(request.subarray(NLMSG_HDRLEN + GENL_HDRLEN, JOOL_ATTRS_OFFSET), NLMSG_HDRLEN + GENL_HDRLEN);
  out[NLMSG_HDRLEN + GENL_HDRLEN + 9] = flags;
  out.set(attributes, JOOL_ATTRS_OFFSET);
  return out;
}

/** A Jool error reply to `request`: code and text. */
export function joolErrorReply(
  request: Uint8Array,
  familyId: number,
  code: number,
  text: string,
): Uint8Array {
  return replyTo(
    request,
    familyId,
    JOOLNLHDR_FLAGS_ERROR,
    encodeAttributes([
      { type: JNLAERR_CODE, payload: u16(code) },
      { type: JNLAERR_MSG, payload: new TextEncoder().encode(text + "\0") },
    ]),
  );
}

/** Root attributes of a listing reply: each entry as a nested JNLAL_ENTRY, as the kernel puts them. */
export function pool4EntriesAttributes(entries: readonly Pool4Entry[]): Uint8Array {
  return encodeAttributes(
    entries.map((e) => ({ type: NLA_F_NESTED | JNLAL_ENTRY, payload: encodePool4EntryAttributes(e) })),
  );
}

/** Answers one POOL4_FOREACH request from `table` as the kernel would. */
export function answerPool4Foreach(
  request: Uint8Array,
  familyId: number,
  table: readonly Pool4Entry[],
  pageSize: number,
): Uint8Array {
  if (commandOf(request) !== JNLOP_POOL4_FOREACH) return joolErrorReply(request, familyId, 95, "not pool4");
  const attrs = parseAttributes(request.subarray(JOOL_ATTRS_OFFSET));
  if (!attrs.ok) return joolErrorReply(request, familyId, 22, attrs.error);
  const offsetAttr = attrs.attributes.find((a) => a.type === JNLAR_OFFSET);
  const protoAttr = attrs.attributes.find((a) => a.type === JNLAR_PROTO);
  let proto: number;
  let start = 0;
  // The kernel walks marks in order, and a mark's ranges in the order they were added.
  const ordered = (p: number) => table.filter((e) => e.proto === p).sort((a, b) => a.mark - b.mark);
  if (offsetAttr) {
    const offset = decodePool4Entry(offsetAttr.payload);
    if (typeof offset === "string") return joolErrorReply(request, familyId, 22, offset);
    proto = offset.proto;
    const index = ordered(proto).findIndex((e) =>
      e.mark === offset.mark && e.address === offset.address && e.prefixLength === offset.prefixLength &&
      e.portMin === offset.portMin && e.portMax === offset.portMax
    );
    if (index < 0) {
      return joolErrorReply(
        request,
        familyId,
        11,
        "Oops. Pool4 changed while I was iterating so I lost track of where I was. Try again.",
      );
    }
    start = index + 1;
  } else if (protoAttr) {
    proto = protoAttr.payload[0];
  } else {
    return joolErrorReply(request, familyId, 22, "The request is missing a protocol.");
  }
  const rest = ordered(proto).slice(start);
  const page = rest.slice(0, pageSize);
  return replyTo(
    request,
    familyId,
    rest.length > pageSize ? JOOLNLHDR_FLAGS_M : 0,
    pool4EntriesAttributes(page),
  );
}

/** Options of {@link Pool4Double}. */
export interface Pool4DoubleOptions {
  /** Entries per reply (the kernel fits about fifty in one). */
  readonly pageSize?: number;
  /** Fails the next N requests with this errno (e.g. to test a failed re-read). */
  readonly failWith?: number;
}

/** An in-memory {@link KernelQuerySocket} answering from a table the test may change. */
export class Pool4Double implements KernelQuerySocket {
  readonly familyId = POOL4_DOUBLE_FAMILY_ID;
  readonly localPort = 4242;
  /** Requests received. */
  readonly requests: Uint8Array[] = [];
  /** The table answered from; assign to change pool4. */
  table: Pool4Entry[];
  /** When set, every request is answered with this errno instead. */
  failWith: number | undefined;
  /** Called before each answer (e.g. to change the table between two pages). */
  beforeAnswer: ((request: Uint8Array) => void) | undefined;
  closed = false;
  readonly #pageSize: number;
  readonly #replies: Uint8Array[] = [];

  constructor(table: Pool4Entry[], options: Pool4DoubleOptions = {}) {
    this.table = table;
    this.#pageSize = options.pageSize ?? 50;
    this.failWith = options.failWith;
  }

  send(message: Uint8Array): void {
    if (this.closed) throw new Error("pool4 double closed");
    this.requests.push(message);
    this.beforeAnswer?.(message);
    this.#replies.push(
      this.failWith !== undefined
        ? joolErrorReply(message, this.familyId, this.failWith, "failing on purpose")
        : answerPool4Foreach(message, this.familyId, this.table, this.#pageSize),
    );
  }

  receive(_timeoutMs: number): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#replies.shift());
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * Parses a table's text form: entries separated by commas, each `PROTO:ADDRESS/LEN:MIN-MAX[:MARK]` with PROTO
 * tcp, udp or icmp (e.g. `tcp:192.0.2.1/32:1024-65535,icmp:192.0.2.1/32:0-65535`). Throws on a bad entry.
 */
export function parsePool4Spec(text: string): Pool4Entry[] {
  if (text.trim() === "") return [];
  return text.split(",").map((item) => {
    const m = /^(tcp|udp|icmp):(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+):(\d+)-(\d+)(?::(\d+))?$/i.exec(item.trim());
    if (!m) throw new Error(`bad pool4 entry "${item}"; expected PROTO:ADDRESS/LEN:MIN-MAX[:MARK]`);
    const octets = [m[2], m[3], m[4], m[5]].map(Number);
    return {
      mark: Number(m[9] ?? 0),
      iterations: 1024,
      flags: 0,
      proto: ["tcp", "udp", "icmp"].indexOf(m[1].toLowerCase()),
      address: ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0,
      prefixLength: Number(m[6]),
      portMin: Number(m[7]),
      portMax: Number(m[8]),
    };
  });
}
