/**
 * The kernel-limits table, case by case: for each format, protocol and field, the range's ends pass the validator
 * and the first value outside is dropped with the field named (decodeEntry, and validatePayload's per-datagram
 * path with its drop reason).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { decodeEntry, encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import { validatePayload } from "../../lib/session/payload.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import {
  type FieldLimit,
  FORMAT_TAGS,
  KERNEL_LIMITS,
  type LimitedField,
  PROTO_BY_NUMBER,
  type ProtoName,
} from "../../lib/session/kernel_limits.ts";
import { HOST_LITTLE_ENDIAN } from "../../lib/jool/netlink.ts";

const FORMATS: SessionFormat[] = ["A", "B", "C"];

function baseEntry(proto: number): SessionEntry {
  return {
    proto,
    state: proto === 0 ? 1 : 0,
    timer: proto === 0 ? 1 : 0,
    expiration: 59_000,
    src6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8),
    src6Port: 5831,
    dst6: Uint8Array.of(0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 8),
    dst6Port: 80,
    src4: Uint8Array.of(192, 0, 2, 1),
    src4Port: 2168,
    dst4: Uint8Array.of(192, 0, 2, 8),
    dst4Port: 80,
  };
}

/** Where each field lives in each format: [offset, bytes, little-endian?]. Enums of B and C are packed. */
const AT: Record<SessionFormat, Partial<Record<LimitedField, [number, 1 | 2 | 4, boolean]>>> = {
  A: {
    proto: [112, 1, false],
    state: [120, 1, false],
    timer: [128, 1, false],
    expiration: [136, 4, HOST_LITTLE_ENDIAN],
    src6Port: [32, 2, HOST_LITTLE_ENDIAN],
    dst6Port: [64, 2, HOST_LITTLE_ENDIAN],
    src4Port: [84, 2, HOST_LITTLE_ENDIAN],
    dst4Port: [104, 2, HOST_LITTLE_ENDIAN],
  },
  B: {
    expiration: [40, 4, false],
    src6Port: [44, 2, false],
    dst6Port: [46, 2, false],
    src4Port: [48, 2, false],
  },
  C: {
    expiration: [28, 4, false],
    src6Port: [32, 2, false],
    src4Port: [34, 2, false],
    dst4Port: [36, 2, false],
  },
};
const PACKED_AT = { B: 50, C: 38 } as const;
const PACKED_BITS: Partial<Record<LimitedField, [shift: number, mask: number]>> = {
  proto: [5, 3],
  state: [2, 7],
  timer: [0, 3],
  flags: [7, 0x1ff],
};

/** Writes `value` raw into the entry's bytes (encodeEntry refuses out-of-range values). */
function write(bytes: Uint8Array, format: SessionFormat, field: LimitedField, value: number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const place = AT[format][field];
  if (place) {
    const [at, size, le] = place;
    if (size === 1) v.setUint8(at, value);
    else if (size === 2) v.setUint16(at, value, le);
    else v.setUint32(at, value, le);
    return;
  }
  assert(format !== "A", `format A has no packed ${field}`);
  const [shift, mask] = PACKED_BITS[field]!;
  const at = PACKED_AT[format];
  v.setUint16(at, (v.getUint16(at, false) & ~(mask << shift)) | (value << shift), false);
}

function entryWith(format: SessionFormat, proto: number, field: LimitedField, value: number): Uint8Array {
  const bytes = encodeEntry(baseEntry(proto), format);
  write(bytes, format, field, value);
  return bytes;
}

Deno.test("kernel limits: the table covers every field each format carries, for every protocol, with its source", () => {
  const carried: Record<SessionFormat, LimitedField[]> = {
    A: ["proto", "state", "timer", "expiration", "src6Port", "dst6Port", "src4Port", "dst4Port"],
    B: ["proto", "state", "timer", "expiration", "flags", "src6Port", "dst6Port", "src4Port"],
    C: ["proto", "state", "timer", "expiration", "flags", "src6Port", "src4Port", "dst4Port"],
  };
  for (const format of FORMATS) {
    assert(FORMAT_TAGS[format].length > 0);
    for (const proto of PROTO_BY_NUMBER) {
      const limits = KERNEL_LIMITS[format][proto];
      assertEquals(Object.keys(limits).sort(), [...carried[format]].sort(), `${format} ${proto}`);
      for (const [field, limit] of Object.entries(limits)) {
        assert(limit.source.includes("src/"), `${format} ${proto} ${field}: ${limit.source}`);
        assert(limit.min <= limit.max && limit.max <= limit.wireMax, `${format} ${proto} ${field}`);
      }
    }
  }
  // The gap this table closed: the timer is limited for UDP and ICMP too, in every format.
  for (const format of FORMATS) {
    for (const proto of ["UDP", "ICMP"] as ProtoName[]) {
      assertEquals(KERNEL_LIMITS[format][proto].timer!.max, 2);
    }
  }
});

for (const format of FORMATS) {
  for (let proto = 0; proto < PROTO_BY_NUMBER.length; proto++) {
    const name = PROTO_BY_NUMBER[proto];
    Deno.test(`kernel limits: format ${format} ${name}: each field's ends pass, the first value outside is dropped`, () => {
      for (
        const [field, limit] of Object.entries(KERNEL_LIMITS[format][name]) as [LimitedField, FieldLimit][]
      ) {
        // The proto field's own cases keep the other fields legal for the protocol written.
        const inside = field === "proto" ? [] : [limit.min, limit.max];
        for (const value of inside) {
          const bytes = entryWith(format, proto, field, value);
          const r = decodeEntry(bytes, format);
          assert(r.ok, `${format} ${name} ${field}=${value}: ${JSON.stringify(r)}`);
          if (field !== "flags") assertEquals(r.entry[field], value, `${format} ${name} ${field}`);
          assertEquals(encodeEntry(r.entry, format), bytes);
          assertEquals(
            validatePayload(bytes, format),
            { ok: true, sessions: 1 },
            `${format} ${name} ${field}`,
          );
        }
        if (limit.max === limit.wireMax) continue; // the wire cannot carry a value outside
        for (const value of [limit.max + 1, limit.wireMax]) {
          const label = `${format} ${name} ${field}=${value}`;
          const bytes = entryWith(format, proto, field, value);
          const r = decodeEntry(bytes, format);
          assertEquals(!r.ok && r.field, field, label);
          const p = validatePayload(bytes, format);
          assertEquals(p.ok ? "ok" : p.reason, "net_bad_field", label);
          assert(!p.ok && p.detail.startsWith(`entry 0: ${field} `), `${label}: ${!p.ok && p.detail}`);
          assertEquals(validatePayload(bytes.slice(), format), p, label); // the hot path agrees with decodeEntry
        }
      }
      // Every legal proto number passes with its own fields.
      for (let other = 0; other <= KERNEL_LIMITS[format][name].proto!.max; other++) {
        assert(decodeEntry(encodeEntry(baseEntry(other), format), format).ok);
      }
    });
  }
}
