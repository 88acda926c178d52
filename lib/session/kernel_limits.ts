/**
 * What the Jool kernel module accepts in a joold session entry: per format, per protocol, each field's legal range
 * and the Jool source that says so. The validator ({@link ./entries.ts}) checks exactly these ranges, so an entry
 * it lets through cannot make the kernel reject it (an error reply) or log about it.
 *
 * Read from Jool's source at the tags that define each format (docs/protocol.md describes the formats):
 * - A: v4.1.9 `src/mod/common/nl/attribute.c` `jnla_get_session` (nested attributes, u8 enums, host-order u32
 *   expiration);
 * - B: v4.1.12 `src/mod/common/nl/attribute.c` `jnla_get_session_joold` (packed proto/state/timer);
 * - C: v4.1.13, v4.1.14, v4.1.15 `src/mod/common/nl/attribute.c` `jnla_get_session_joold` (identical in the three).
 *
 * Every one of them then goes through the same checks, unchanged from 4.1.9 to 4.1.15:
 * - `get_timeout()` (same file): proto other than TCP/UDP/ICMP → "Unknown protocol: %u"; a TCP timer other than
 *   EST/TRANS/SYN4 → "Unknown session timer: %u"; either fails the entry (-EINVAL, an error reply).
 * - `src/mod/common/joold.c` `add_new_session()` → `src/mod/common/db/bib/db.c` `bib_add_session()` →
 *   `commit_add()` → `queue_unsorted_session()`: a timer other than EST/TRANS/SYN4, for ANY protocol, logs
 *   "incoming joold session's timer (%d) is unknown." and returns -EINVAL, which joold.c logs as
 *   "sessiondb_add() threw unknown error code -22." (this is why UDP and ICMP timers are checked too).
 * - `src/mod/common/steps/filtering_and_updating.c`: a TCP state outside `enum tcp_state`
 *   (`src/common/session.h`, 0–6) is stored as is and later hits `WARN(true, "Invalid state found: %u.")` or
 *   `"Unknown state found (%d)"`, a kernel warning with a stack trace.
 * - Addresses, ports and the expiration are copied without any check (any value is legal).
 * @module
 */
import type { SessionFormat } from "./format.ts";

/** The protocols an entry may carry (l4_protocol 0–2; 3 is L4PROTO_OTHER, never synced). */
export type ProtoName = "TCP" | "UDP" | "ICMP";

/** The entry fields the validator names when it drops an entry. */
export type LimitedField =
  | "proto"
  | "state"
  | "timer"
  | "flags"
  | "expiration"
  | "src6Port"
  | "dst6Port"
  | "src4Port"
  | "dst4Port";

/** One field's legal range in one format for one protocol. */
export interface FieldLimit {
  /** Smallest legal value. */
  readonly min: number;
  /** Largest legal value. */
  readonly max: number;
  /** Largest value the wire can carry in this format (when `max` is smaller, the rest is dropped). */
  readonly wireMax: number;
  /**
   * Where the range comes from. `kernel`: the kernel rejects or logs outside it. `sender`: the kernel ignores
   * these bits but no Jool sender ever sets them, so a datagram that does is not Jool's (dropped as malformed).
   */
  readonly basis: "kernel" | "sender";
  /** The Jool source (path and function, tags) that says so. */
  readonly source: string;
}

/** The fields an entry of a format carries, with their limits. */
export type FormatLimits = Readonly<Partial<Record<LimitedField, FieldLimit>>>;

const GET_TIMEOUT = "src/mod/common/nl/attribute.c get_timeout()";
const QUEUE_UNSORTED = "src/mod/common/db/bib/db.c queue_unsorted_session()";
const TCP_STATE = "src/common/session.h enum tcp_state; src/mod/common/steps/filtering_and_updating.c " +
  "tcp_state_machine()/tcp_est_expire_cb() WARN";
const UINT16 = 0xffff;
const UINT32 = 0xffff_ffff;

/** The tags each format's deserialiser was read at. */
export const FORMAT_TAGS: Readonly<Record<SessionFormat, readonly string[]>> = {
  A: ["v4.1.9"],
  B: ["v4.1.12"],
  C: ["v4.1.13", "v4.1.14", "v4.1.15"],
};

/** The widths each format gives the enums: u8 attributes in A, the packed 2/3/2-bit u16 in B and C. */
const ENUM_WIRE_MAX: Readonly<Record<SessionFormat, { proto: number; state: number; timer: number }>> = {
  A: { proto: 0xff, state: 0xff, timer: 0xff },
  B: { proto: 3, state: 7, timer: 3 },
  C: { proto: 3, state: 7, timer: 3 },
};

/** The ports each format carries (the receiver derives the others: B derives dst4, C derives dst6). */
const PORTS: Readonly<Record<SessionFormat, readonly LimitedField[]>> = {
  A: ["src6Port", "dst6Port", "src4Port", "dst4Port"],
  B: ["src6Port", "dst6Port", "src4Port"],
  C: ["src6Port", "src4Port", "dst4Port"],
};

function deserialiser(format: SessionFormat): string {
  const fn = format === "A" ? "jnla_get_session()" : "jnla_get_session_joold()";
  return `src/mod/common/nl/attribute.c ${fn} (${FORMAT_TAGS[format].join(", ")})`;
}

function limitsFor(format: SessionFormat, proto: ProtoName): FormatLimits {
  const wire = ENUM_WIRE_MAX[format];
  const tags = `(${FORMAT_TAGS[format].join(", ")})`;
  const out: Partial<Record<LimitedField, FieldLimit>> = {
    proto: {
      min: 0,
      max: 2,
      wireMax: wire.proto,
      basis: "kernel",
      source: `${GET_TIMEOUT} "Unknown protocol: %u" ${tags}`,
    },
    state: { min: 0, max: 6, wireMax: wire.state, basis: "kernel", source: `${TCP_STATE} ${tags}` },
    timer: {
      min: 0,
      max: 2,
      wireMax: wire.timer,
      basis: "kernel",
      source: proto === "TCP"
        ? `${GET_TIMEOUT} "Unknown session timer: %u"; ${QUEUE_UNSORTED} ${tags}`
        : `${QUEUE_UNSORTED} "incoming joold session's timer (%d) is unknown." ${tags}`,
    },
    expiration: { min: 0, max: UINT32, wireMax: UINT32, basis: "kernel", source: deserialiser(format) },
  };
  if (format !== "A") {
    out.flags = {
      min: 0,
      max: 0,
      wireMax: 0x1ff,
      basis: "sender",
      source: `${deserialiser(format)} reads bits 0–6 only; src/mod/common/nl/attribute.c ` +
        `jnla_put_session_joold() writes 0 above them`,
    };
  }
  for (const port of PORTS[format]) {
    out[port] = { min: 0, max: UINT16, wireMax: UINT16, basis: "kernel", source: deserialiser(format) };
  }
  return out;
}

const FORMATS: readonly SessionFormat[] = ["A", "B", "C"];
const PROTOS: readonly ProtoName[] = ["TCP", "UDP", "ICMP"];

/**
 * THE table: `KERNEL_LIMITS[format][proto][field]`. `state` applies to UDP and ICMP too (the kernel stores it;
 * Jool's own UDP/ICMP sessions are always 0, ESTABLISHED) so that every value the validator lets through is one
 * of `enum tcp_state`.
 */
export const KERNEL_LIMITS: Readonly<Record<SessionFormat, Readonly<Record<ProtoName, FormatLimits>>>> =
  Object
    .fromEntries(
      FORMATS.map((f) => [f, Object.fromEntries(PROTOS.map((p) => [p, limitsFor(f, p)]))]),
    ) as Record<SessionFormat, Record<ProtoName, FormatLimits>>;

/** Protocol names by l4_protocol number. */
export const PROTO_BY_NUMBER: readonly ProtoName[] = PROTOS;

/**
 * The enum limits flattened for the per-datagram check: `ENUM_MAX[format][proto * 2]` is the state maximum and
 * `[proto * 2 + 1]` the timer maximum (proto 0–2, already checked against `PROTO_MAX`). Plain numbers, so checking
 * an entry allocates nothing.
 */
export const ENUM_MAX: Readonly<Record<SessionFormat, Readonly<Uint8Array>>> = Object.fromEntries(
  FORMATS.map((f) => [
    f,
    Uint8Array.from(PROTOS.flatMap((p) => [KERNEL_LIMITS[f][p].state!.max, KERNEL_LIMITS[f][p].timer!.max])),
  ]),
) as Record<SessionFormat, Uint8Array>;

/** The largest legal l4_protocol (the same in every format and for every protocol). */
export const PROTO_MAX: number = KERNEL_LIMITS.C.TCP.proto!.max;
