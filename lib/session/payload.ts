/**
 * THE codec for a datagram payload (docs/protocol.md §6.1): the content of the kernel's SESSION_ENTRIES attribute, i.e.
 * concatenated JNLAL_ENTRY attributes. Used on the way in (network → kernel), where nothing malformed may
 * reach the kernel, and to count the sessions of kernel batches.
 * @module
 */
import { ENTRY_SIZE, type SessionFormat } from "./format.ts";
import { checkEntryAt } from "./entries.ts";
import type { DropReason } from "../stats.ts";
import { HOST_LITTLE_ENDIAN, NLA_HDRLEN, viewOf } from "../jool/netlink.ts";

/** The largest datagram upstream accepts (`JOOLD_MAX_PAYLOAD`). */
export const MAX_PAYLOAD = 2048;

/** Result of validating a payload for the local kernel. */
export type PayloadResult =
  | { ok: true; sessions: number }
  | { ok: false; reason: DropReason; detail: string };

const SIZES = new Map<number, SessionFormat>(
  (Object.entries(ENTRY_SIZE) as [SessionFormat, number][]).map(([f, n]) => [n, f]),
);

/**
 * Validates a payload entry by entry for a kernel that speaks `format`: size ≤ 2048, at least one entry,
 * every entry whole, of the local format's size, and with in-range fields.
 */
export function validatePayload(payload: Uint8Array, format: SessionFormat): PayloadResult {
  if (payload.length > MAX_PAYLOAD) {
    return { ok: false, reason: "net_oversize", detail: `${payload.length} bytes > ${MAX_PAYLOAD}` };
  }
  if (payload.length === 0) return { ok: false, reason: "net_empty", detail: "no session entry" };
  const size = ENTRY_SIZE[format];
  const v = viewOf(payload);
  let sessions = 0;
  for (let at = 0; at < payload.length; sessions++) {
    const left = payload.length - at;
    if (left < NLA_HDRLEN) {
      return {
        ok: false,
        reason: "net_truncated_entry",
        detail: `entry ${sessions}: ${left} trailing bytes, shorter than an entry header`,
      };
    }
    const nlaLen = v.getUint16(at, HOST_LITTLE_ENDIAN);
    if (nlaLen > left) {
      return {
        ok: false,
        reason: "net_truncated_entry",
        detail: `entry ${sessions}: header says ${nlaLen} bytes, ${left} left`,
      };
    }
    if (nlaLen !== size) {
      const other = SIZES.get(nlaLen);
      return other
        ? {
          ok: false,
          reason: "net_foreign_format",
          detail:
            `entry ${sessions}: ${nlaLen}-byte entry (format ${other}); the local kernel speaks format ${format}`,
        }
        : {
          ok: false,
          reason: "net_bad_field",
          detail: `entry ${sessions}: nla_len ${nlaLen}; format ${format} entries have ${size}`,
        };
    }
    const problem = checkEntryAt(v, at, format);
    if (problem && !problem.ok) {
      return {
        ok: false,
        reason: "net_bad_field",
        detail: `entry ${sessions}: ${problem.field} ${problem.detail}`,
      };
    }
    at += size; // every format's size is a multiple of 4: no padding between entries
  }
  return { ok: true, sessions };
}

/**
 * Counts the entry attributes of a payload without judging their content (for kernel batches).
 * Returns undefined when an entry header is truncated or overruns the payload.
 */
export function countSessions(payload: Uint8Array): number | undefined {
  const v = viewOf(payload);
  let n = 0;
  for (let at = 0; at < payload.length; n++) {
    if (payload.length - at < NLA_HDRLEN) return undefined;
    const len = v.getUint16(at, HOST_LITTLE_ENDIAN);
    if (len < NLA_HDRLEN || len > payload.length - at) return undefined;
    at += (len + 3) & ~3;
  }
  return n;
}

/** The format a payload's first entry looks like (by its nla_len), if it is one of the known sizes. */
export function formatBySize(payload: Uint8Array): SessionFormat | undefined {
  if (payload.length < NLA_HDRLEN) return undefined;
  return SIZES.get(viewOf(payload).getUint16(0, HOST_LITTLE_ENDIAN));
}
