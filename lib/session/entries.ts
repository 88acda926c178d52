/**
 * Session entries in Jool's three wire formats (docs/protocol.md §5), decoded, validated and encoded field by
 * field. Each entry is one JNLAL_ENTRY attribute, its 4-byte host-order header included. The legal ranges are
 * the kernel's, from {@link ./kernel_limits.ts}.
 *
 * - A (≤4.1.11): 140 bytes of nested attributes; ports and expiration in host order.
 * - B (4.1.12): 52 bytes; dst4 is derived by the receiver.
 * - C (≥4.1.13): 40 bytes, big-endian; dst6 is derived by the receiver.
 * @module
 */
import { ENTRY_SIZE, type SessionFormat } from "./format.ts";
import { HOST_LITTLE_ENDIAN, NLA_F_NESTED, viewOf } from "../jool/netlink.ts";
import { ENUM_MAX, PROTO_BY_NUMBER, PROTO_MAX } from "./kernel_limits.ts";

/** JNLAL_ENTRY: the type of every entry attribute. */
export const JNLAL_ENTRY = 1;

/** l4_protocol: 0 TCP, 1 UDP, 2 ICMP. */
export const PROTO_NAMES = ["TCP", "UDP", "ICMP"] as const;

/** One session. Which addresses travel depends on the format (the receiver derives the others). */
export interface SessionEntry {
  /** 0 TCP, 1 UDP, 2 ICMP. */
  readonly proto: number;
  /** TCP state 0–6 (0 for UDP/ICMP). */
  readonly state: number;
  /** Timer type 0–2. */
  readonly timer: number;
  /** Milliseconds until the session expires. */
  readonly expiration: number;
  /** IPv6 client address (16 bytes). */
  readonly src6: Uint8Array;
  /** IPv6 client port / ICMP id. */
  readonly src6Port: number;
  /** IPv6 destination (formats A and B). */
  readonly dst6?: Uint8Array;
  /** IPv6 destination port (formats A and B). */
  readonly dst6Port?: number;
  /** IPv4 pool4 address (4 bytes). */
  readonly src4: Uint8Array;
  /** IPv4 pool4 port / ICMP id. */
  readonly src4Port: number;
  /** IPv4 peer (formats A and C). */
  readonly dst4?: Uint8Array;
  /** IPv4 peer port (formats A and C). */
  readonly dst4Port?: number;
}

/** Result of decoding one entry. */
export type EntryResult = { ok: true; entry: SessionEntry } | { ok: false; field: string; detail: string };

/** Format A nested attribute ids (JNLASE_*) and transport-address ids (JNLAT_*). */
const JNLASE_SRC6 = 1, JNLASE_DST6 = 2, JNLASE_SRC4 = 3, JNLASE_DST4 = 4;
const JNLASE_PROTO = 5, JNLASE_STATE = 6, JNLASE_TIMER = 7, JNLASE_EXPIRATION = 8;
const JNLAT_ADDR = 1, JNLAT_PORT = 2;

/** Format A layout: offset, nla_len, type and whether the attribute is a nest, in entry order. */
const FORMAT_A_LAYOUT: readonly { name: string; at: number; len: number; type: number; nest: boolean }[] = [
  { name: "src6", at: 4, len: 32, type: JNLASE_SRC6, nest: true },
  { name: "src6.addr", at: 8, len: 20, type: JNLAT_ADDR, nest: false },
  { name: "src6.port", at: 28, len: 6, type: JNLAT_PORT, nest: false },
  { name: "dst6", at: 36, len: 32, type: JNLASE_DST6, nest: true },
  { name: "dst6.addr", at: 40, len: 20, type: JNLAT_ADDR, nest: false },
  { name: "dst6.port", at: 60, len: 6, type: JNLAT_PORT, nest: false },
  { name: "src4", at: 68, len: 20, type: JNLASE_SRC4, nest: true },
  { name: "src4.addr", at: 72, len: 8, type: JNLAT_ADDR, nest: false },
  { name: "src4.port", at: 80, len: 6, type: JNLAT_PORT, nest: false },
  { name: "dst4", at: 88, len: 20, type: JNLASE_DST4, nest: true },
  { name: "dst4.addr", at: 92, len: 8, type: JNLAT_ADDR, nest: false },
  { name: "dst4.port", at: 100, len: 6, type: JNLAT_PORT, nest: false },
  { name: "proto", at: 108, len: 5, type: JNLASE_PROTO, nest: false },
  { name: "state", at: 116, len: 5, type: JNLASE_STATE, nest: false },
  { name: "timer", at: 124, len: 5, type: JNLASE_TIMER, nest: false },
  { name: "expiration", at: 132, len: 8, type: JNLASE_EXPIRATION, nest: false },
];

/**
 * Checks proto, state and timer against the kernel's ranges for `format` (KERNEL_LIMITS: the kernel's "Unknown
 * protocol", "Unknown session timer", "incoming joold session's timer (%d) is unknown" and its TCP state WARNs).
 * Allocates only when it reports a problem.
 */
export function checkEnums(
  proto: number,
  state: number,
  timer: number,
  format: SessionFormat,
): EntryResult | undefined {
  if (!(proto >= 0 && proto <= PROTO_MAX)) {
    return { ok: false, field: "proto", detail: `protocol ${proto}; expected 0–${PROTO_MAX}` };
  }
  const limits = ENUM_MAX[format];
  const stateMax = limits[proto * 2], timerMax = limits[proto * 2 + 1];
  if (!(state >= 0 && state <= stateMax)) {
    return {
      ok: false,
      field: "state",
      detail: `${PROTO_BY_NUMBER[proto]} state ${state}; expected 0–${stateMax}`,
    };
  }
  if (!(timer >= 0 && timer <= timerMax)) {
    return {
      ok: false,
      field: "timer",
      detail: `${PROTO_BY_NUMBER[proto]} timer ${timer}; expected 0–${timerMax}`,
    };
  }
  return undefined;
}

/** Packs proto/state/timer as formats B and C do: bits 5–6 proto, 2–4 state, 0–1 timer. */
export function packPst(proto: number, state: number, timer: number): number {
  return ((proto & 3) << 5) | ((state & 7) << 2) | (timer & 3);
}

/** Offset of the packed proto/state/timer field in formats B and C (entry header included). */
const PST_OFFSET: Readonly<Record<"B" | "C", number>> = { B: 50, C: 38 };

/**
 * Validates the entry of `format` at `at` in `view` without decoding it into objects: the per-datagram hot
 * path (a few reads, no allocation unless it reports a problem). The caller has checked that nla_len is the
 * format's size and that the entry fits. Returns undefined when the entry is valid, else the problem.
 */
export function checkEntryAt(view: DataView, at: number, format: SessionFormat): EntryResult | undefined {
  const nlaType = view.getUint16(at + 2, HOST_LITTLE_ENDIAN);
  if ((format === "A" ? nlaType & ~NLA_F_NESTED : nlaType) !== JNLAL_ENTRY) {
    return { ok: false, field: "nla_type", detail: `0x${nlaType.toString(16)}; expected an entry (1)` };
  }
  if (format === "A") {
    const layout = checkLayoutA(view, at);
    if (layout) return layout;
    return checkEnums(view.getUint8(at + 112), view.getUint8(at + 120), view.getUint8(at + 128), "A");
  }
  const packed = view.getUint16(at + PST_OFFSET[format], false);
  if (packed & ~0x7f) return reservedBits(packed);
  return checkEnums((packed >> 5) & 3, (packed >> 2) & 7, packed & 3, format);
}

/**
 * Checks format A's nested attribute headers (lengths and types, in order) and padding for the entry at `at`.
 * As Jool builds them (v4.1.9 src/mod/common/nl/attribute.c jnla_put_session(): nla_nest_start for the entry and
 * its four addresses, nla_put_u8/u16/u32 for the rest): NLA_F_NESTED on all five nests (≥5.2 kernels) or on
 * none, never on a leaf, and zero padding (nla_put zero-fills it). The kernel ignores the padding and the flags,
 * but no Jool sends anything else, so an entry that differs is not Jool's; this way every accepted entry
 * re-encodes byte for byte.
 */
function checkLayoutA(v: DataView, at: number): EntryResult | undefined {
  const nested = (v.getUint16(at + 2, HOST_LITTLE_ENDIAN) & NLA_F_NESTED) !== 0 ? NLA_F_NESTED : 0;
  for (let i = 0; i < FORMAT_A_LAYOUT.length; i++) {
    const f = FORMAT_A_LAYOUT[i];
    const len = v.getUint16(at + f.at, HOST_LITTLE_ENDIAN);
    const rawType = v.getUint16(at + f.at + 2, HOST_LITTLE_ENDIAN);
    if (len !== f.len) return { ok: false, field: f.name, detail: `nla_len ${len}; expected ${f.len}` };
    const expected = f.type | (f.nest ? nested : 0);
    if (rawType !== expected) {
      return {
        ok: false,
        field: f.name,
        detail: `nla_type 0x${rawType.toString(16)}; expected 0x${expected.toString(16)}` +
          (f.nest ? " (NLA_F_NESTED on all nests or on none)" : ""),
      };
    }
    if (!f.nest) {
      for (let p = at + f.at + f.len; p < at + f.at + ((f.len + 3) & ~3); p++) {
        if (v.getUint8(p) !== 0) {
          return {
            ok: false,
            field: `${f.name} padding`,
            detail: `byte ${p - at} is ${v.getUint8(p)}; expected 0`,
          };
        }
      }
    }
  }
  return undefined;
}

function reservedBits(packed: number): EntryResult {
  return { ok: false, field: "flags", detail: `packed 0x${packed.toString(16)} has reserved bits set` };
}

/**
 * Decodes one entry attribute (header included, exactly `ENTRY_SIZE[format]` bytes) and validates it.
 * The entry header's type must be JNLAL_ENTRY (with NLA_F_NESTED in format A when the nests carry it).
 */
export function decodeEntry(bytes: Uint8Array, format: SessionFormat): EntryResult {
  const size = ENTRY_SIZE[format];
  if (bytes.length !== size) {
    return { ok: false, field: "length", detail: `${bytes.length} bytes; format ${format} has ${size}` };
  }
  const v = viewOf(bytes);
  const nlaLen = v.getUint16(0, HOST_LITTLE_ENDIAN);
  const nlaType = v.getUint16(2, HOST_LITTLE_ENDIAN);
  if (nlaLen !== size) return { ok: false, field: "nla_len", detail: `${nlaLen}; expected ${size}` };
  if ((format === "A" ? nlaType & ~NLA_F_NESTED : nlaType) !== JNLAL_ENTRY) {
    return { ok: false, field: "nla_type", detail: `0x${nlaType.toString(16)}; expected an entry (1)` };
  }
  switch (format) {
    case "A":
      return decodeA(bytes);
    case "B":
      return decodeB(bytes);
    case "C":
      return decodeC(bytes);
  }
}

function decodeA(bytes: Uint8Array): EntryResult {
  const v = viewOf(bytes);
  const layout = checkLayoutA(v, 0);
  if (layout) return layout;
  const proto = bytes[112], state = bytes[120], timer = bytes[128];
  const bad = checkEnums(proto, state, timer, "A");
  if (bad) return bad;
  return {
    ok: true,
    entry: {
      proto,
      state,
      timer,
      expiration: v.getUint32(136, HOST_LITTLE_ENDIAN),
      src6: bytes.slice(12, 28),
      src6Port: v.getUint16(32, HOST_LITTLE_ENDIAN),
      dst6: bytes.slice(44, 60),
      dst6Port: v.getUint16(64, HOST_LITTLE_ENDIAN),
      src4: bytes.slice(76, 80),
      src4Port: v.getUint16(84, HOST_LITTLE_ENDIAN),
      dst4: bytes.slice(96, 100),
      dst4Port: v.getUint16(104, HOST_LITTLE_ENDIAN),
    },
  };
}

function unpackPst(packed: number): { proto: number; state: number; timer: number } | EntryResult {
  if (packed & ~0x7f) return reservedBits(packed);
  return { proto: (packed >> 5) & 3, state: (packed >> 2) & 7, timer: packed & 3 };
}

function decodeB(bytes: Uint8Array): EntryResult {
  const v = viewOf(bytes);
  const pst = unpackPst(v.getUint16(50, false));
  if ("ok" in pst) return pst;
  const bad = checkEnums(pst.proto, pst.state, pst.timer, "B");
  if (bad) return bad;
  return {
    ok: true,
    entry: {
      ...pst,
      src6: bytes.slice(4, 20),
      dst6: bytes.slice(20, 36),
      src4: bytes.slice(36, 40),
      expiration: v.getUint32(40, false),
      src6Port: v.getUint16(44, false),
      dst6Port: v.getUint16(46, false),
      src4Port: v.getUint16(48, false),
    },
  };
}

function decodeC(bytes: Uint8Array): EntryResult {
  const v = viewOf(bytes);
  const pst = unpackPst(v.getUint16(38, false));
  if ("ok" in pst) return pst;
  const bad = checkEnums(pst.proto, pst.state, pst.timer, "C");
  if (bad) return bad;
  return {
    ok: true,
    entry: {
      ...pst,
      src6: bytes.slice(4, 20),
      src4: bytes.slice(20, 24),
      dst4: bytes.slice(24, 28),
      expiration: v.getUint32(28, false),
      src6Port: v.getUint16(32, false),
      src4Port: v.getUint16(34, false),
      dst4Port: v.getUint16(36, false),
    },
  };
}

function checkUint(value: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${field}: ${value}; expected an integer 0–${max}`);
  }
}

function need<T>(value: T | undefined, field: string, format: SessionFormat): T {
  if (value === undefined) throw new RangeError(`format ${format} needs ${field}`);
  return value;
}

/**
 * Encodes one entry (header included). Throws RangeError when a field the format carries is missing or out of
 * the kernel's range (a port or expiration that does not fit its field included). Format A entries get NLA_F_NESTED on the nests when `nested` (default true, like a
 * ≥5.2 kernel) and on the entry header too.
 */
export function encodeEntry(entry: SessionEntry, format: SessionFormat, nested = true): Uint8Array {
  const bad = checkEnums(entry.proto, entry.state, entry.timer, format);
  if (bad && !bad.ok) throw new RangeError(`${bad.field}: ${bad.detail}`);
  checkUint(entry.expiration, 0xffff_ffff, "expiration");
  for (const port of ["src6Port", "dst6Port", "src4Port", "dst4Port"] as const) {
    const value = entry[port];
    if (value !== undefined) checkUint(value, 0xffff, port);
  }
  for (const [addr, len] of [["src6", 16], ["dst6", 16], ["src4", 4], ["dst4", 4]] as const) {
    const value = entry[addr];
    if (value !== undefined && value.length !== len) {
      throw new RangeError(`${addr}: ${value.length} bytes; expected ${len}`);
    }
  }
  const size = ENTRY_SIZE[format];
  const out = new Uint8Array(size);
  const v = viewOf(out);
  v.setUint16(0, size, HOST_LITTLE_ENDIAN);
  v.setUint16(2, JNLAL_ENTRY | (format === "A" && nested ? NLA_F_NESTED : 0), HOST_LITTLE_ENDIAN);
  const pst = packPst(entry.proto, entry.state, entry.timer);
  switch (format) {
    case "A": {
      for (const f of FORMAT_A_LAYOUT) {
        v.setUint16(f.at, f.len, HOST_LITTLE_ENDIAN);
        v.setUint16(f.at + 2, f.type | (f.nest && nested ? NLA_F_NESTED : 0), HOST_LITTLE_ENDIAN);
      }
      out.set(entry.src6, 12);
      v.setUint16(32, entry.src6Port, HOST_LITTLE_ENDIAN);
      out.set(need(entry.dst6, "dst6", format), 44);
      v.setUint16(64, need(entry.dst6Port, "dst6Port", format), HOST_LITTLE_ENDIAN);
      out.set(entry.src4, 76);
      v.setUint16(84, entry.src4Port, HOST_LITTLE_ENDIAN);
      out.set(need(entry.dst4, "dst4", format), 96);
      v.setUint16(104, need(entry.dst4Port, "dst4Port", format), HOST_LITTLE_ENDIAN);
      out[112] = entry.proto;
      out[120] = entry.state;
      out[128] = entry.timer;
      v.setUint32(136, entry.expiration, HOST_LITTLE_ENDIAN);
      break;
    }
    case "B":
      out.set(entry.src6, 4);
      out.set(need(entry.dst6, "dst6", format), 20);
      out.set(entry.src4, 36);
      v.setUint32(40, entry.expiration, false);
      v.setUint16(44, entry.src6Port, false);
      v.setUint16(46, need(entry.dst6Port, "dst6Port", format), false);
      v.setUint16(48, entry.src4Port, false);
      v.setUint16(50, pst, false);
      break;
    case "C":
      out.set(entry.src6, 4);
      out.set(entry.src4, 20);
      out.set(need(entry.dst4, "dst4", format), 24);
      v.setUint32(28, entry.expiration, false);
      v.setUint16(32, entry.src6Port, false);
      v.setUint16(34, entry.src4Port, false);
      v.setUint16(36, need(entry.dst4Port, "dst4Port", format), false);
      v.setUint16(38, pst, false);
      break;
  }
  return out;
}
