/**
 * The pool4 check (`"check pool4": 1`, docs/protocol.md §11.2): a synced session whose IPv4 side is outside
 * the local pool4 describes a mapping the local router would never have made, so it is not handed to the
 * kernel. Pure: a payload and a table in, the payload of the sessions that pass out.
 *
 * The IPv4 side checked is the session's src4, the address and port (ICMP: identifier) the NAT64 masks the
 * IPv6 client with — what the router allocates from pool4. It must lie in a pool4 entry of the session's
 * protocol: the address in the entry's prefix and the port in its range.
 *
 * Marks: a session does not carry the mark of the packet that created it, and the router chooses the pool4
 * table by that mark, so an address and port found in any mark's table of the protocol pass.
 *
 * An empty pool4 (no entry in any protocol) makes Jool mask with the host's own addresses and ports
 * 61001–65535; this check does not model that and lets nothing pass (the caller warns: see
 * `lib/kernel/pool4_watch.ts`).
 * @module
 */
import type { Pool4Entry } from "../jool/pool4.ts";
import { HOST_LITTLE_ENDIAN, viewOf } from "../jool/netlink.ts";
import { ENTRY_SIZE, type SessionFormat } from "./format.ts";
import { PROTO_NAMES } from "./entries.ts";

/** One range of a table: `(address & mask) === base` and a port range. */
export interface Pool4Range {
  /** The prefix's address, masked (u32). */
  readonly base: number;
  /** The prefix's mask (u32). */
  readonly mask: number;
  /** First port (ICMP: identifier). */
  readonly portMin: number;
  /** Last port (ICMP: identifier). */
  readonly portMax: number;
}

/** The local pool4, by protocol (0 TCP, 1 UDP, 2 ICMP), marks merged. */
export interface Pool4Table {
  /** Ranges of each protocol. */
  readonly ranges: readonly (readonly Pool4Range[])[];
  /** Entries the kernel listed (all protocols and marks). */
  readonly entries: number;
}

/** Builds the table from the kernel's listing (entries of a protocol other than 0–2 are ignored). */
export function pool4Table(entries: readonly Pool4Entry[]): Pool4Table {
  const ranges: Pool4Range[][] = [[], [], []];
  for (const e of entries) {
    if (e.proto > 2) continue;
    const mask = e.prefixLength === 0 ? 0 : (0xffff_ffff << (32 - e.prefixLength)) >>> 0;
    ranges[e.proto].push({ base: (e.address & mask) >>> 0, mask, portMin: e.portMin, portMax: e.portMax });
  }
  return { ranges, entries: entries.length };
}

/** Whether the table has no entry at all (Jool then masks with the host's own addresses). */
export function pool4Empty(table: Pool4Table): boolean {
  return table.ranges.every((r) => r.length === 0);
}

/** Whether `address` (u32) and `port` of protocol `proto` lie in the table. */
export function inPool4(table: Pool4Table, proto: number, address: number, port: number): boolean {
  const ranges = table.ranges[proto];
  if (!ranges) return false;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (((address & r.mask) >>> 0) === r.base && port >= r.portMin && port <= r.portMax) return true;
  }
  return false;
}

/** What the check let through. */
export interface Pool4CheckResult {
  /** The sessions that pass, whole entries (the input itself when all pass; empty when none does). */
  readonly payload: Uint8Array;
  /** Sessions in {@link payload}. */
  readonly sessions: number;
  /** Sessions dropped. */
  readonly outside: number;
  /** The first dropped session's protocol and src4, for the log ("TCP 203.0.113.9#8080"). */
  readonly firstOutside?: string;
}

/** Where src4's address, src4's port and the protocol sit in an entry (header included), per format. */
const LAYOUT: Readonly<Record<SessionFormat, { addr: number; port: number; portBigEndian: boolean }>> = {
  A: { addr: 76, port: 84, portBigEndian: false }, // nested attributes: the port is a host-order u16
  B: { addr: 36, port: 48, portBigEndian: true },
  C: { addr: 20, port: 34, portBigEndian: true },
};

/** The protocol of the entry at `at`: format A's PROTO attribute, B's and C's packed field (bits 5–6). */
function protoAt(view: DataView, at: number, format: SessionFormat): number {
  switch (format) {
    case "A":
      return view.getUint8(at + 112);
    case "B":
      return (view.getUint16(at + 50, false) >> 5) & 3;
    case "C":
      return (view.getUint16(at + 38, false) >> 5) & 3;
  }
}

/**
 * Keeps the sessions of `payload` (already validated: whole entries of `format`) whose src4 lies in `table`.
 * Allocates only when some session is dropped.
 */
export function checkPool4(payload: Uint8Array, format: SessionFormat, table: Pool4Table): Pool4CheckResult {
  const size = ENTRY_SIZE[format];
  const layout = LAYOUT[format];
  const view = viewOf(payload);
  const total = Math.floor(payload.length / size);
  let keep: boolean[] | undefined;
  let outside = 0;
  let firstOutside: string | undefined;
  for (let i = 0; i < total; i++) {
    const at = i * size;
    const proto = protoAt(view, at, format);
    const address = view.getUint32(at + layout.addr, false);
    const port = view.getUint16(at + layout.port, layout.portBigEndian ? false : HOST_LITTLE_ENDIAN);
    if (inPool4(table, proto, address, port)) continue;
    keep ??= new Array<boolean>(total).fill(true);
    keep[i] = false;
    outside++;
    firstOutside ??= `${PROTO_NAMES[proto] ?? `protocol ${proto}`} ${addressText(address)}#${port}`;
  }
  if (!keep) return { payload, sessions: total, outside: 0 };
  const kept = new Uint8Array((total - outside) * size);
  let to = 0;
  for (let i = 0; i < total; i++) {
    if (!keep[i]) continue;
    kept.set(payload.subarray(i * size, (i + 1) * size), to);
    to += size;
  }
  return { payload: kept, sessions: total - outside, outside, firstOutside };
}

function addressText(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}
