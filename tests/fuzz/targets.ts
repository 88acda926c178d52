/**
 * Property-based fuzz targets (fast-check) for every decoder and validator of outside input: kernel messages,
 * datagrams in each session format, session entries, the ACK-on-arrival check, both config files, stats
 * requests, pool4 replies and the pool4 check, the reliable mode's frame and the authenticated wire. Used twice: by `tests/unit/fuzz.test.ts` (a bounded number of runs, fixed seed) and by
 * `deno task fuzz` (`scripts/fuzz/main.ts`, ≥ 1 000 000 runs per target).
 *
 * Properties: no exception escapes (config files: only a JooldError with a one-line message); anything accepted
 * re-encodes byte for byte; no accepted session entry has a field outside the kernel's range
 * (lib/session/kernel_limits.ts); the ACK check never accepts what the full path would not ACK.
 * @module
 */
import { shouldAck } from "../../lib/kernel/ack_rule.ts";
import fc from "fast-check";
import { decodeEntry, encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import { ENTRY_SIZE, type SessionFormat } from "../../lib/session/format.ts";
import { KERNEL_LIMITS, type LimitedField, PROTO_BY_NUMBER } from "../../lib/session/kernel_limits.ts";
import { MAX_PAYLOAD, validatePayload } from "../../lib/session/payload.ts";
import { upstreamWire } from "../../lib/wire.ts";
import { DROP_REASONS } from "../../lib/stats.ts";
import {
  align4,
  concatBytes,
  encodeAttributes,
  HOST_LITTLE_ENDIAN,
  NLA_F_NESTED,
  NLMSG_HDRLEN,
  splitMessages,
  viewOf,
  writeGenlHeader,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";
import { JNLAR_SESSION_ENTRIES, parseKernelMessage } from "../../lib/jool/messages.ts";
import { packVersion, readJoolHeader } from "../../lib/jool/header.ts";
import { ackableBatchVersion, instanceKey } from "../../lib/jool/ack_check.ts";
import { parseConfigText } from "../../lib/config/json_file.ts";
import { validateModSocket } from "../../lib/config/modsocket.ts";
import { NETSOCKET_KEYS, validateNetSocket } from "../../lib/config/netsocket.ts";
import type { HostLookup } from "../../lib/net/host_lookup.ts";
import { JooldError } from "../../lib/errors.ts";
import { isPrefix, parsePrefix, prefixContains, prefixText } from "../../lib/net/ingress.ts";
import { parsePacketInfo } from "../../ffi/packet_info.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { Stats } from "../../lib/stats.ts";
import { renderCsvText, renderForRequest, renderJson, renderPrometheus } from "../../lib/stats_format.ts";
import { decodePool4Reply, encodePool4Foreach, type Pool4Entry } from "../../lib/jool/pool4.ts";
import { checkPool4, inPool4, pool4Table } from "../../lib/session/pool4_check.ts";
import { pool4EntriesAttributes, replyTo } from "../helpers/pool4_double.ts";
import { createHmac } from "node:crypto";
import {
  decodeFrame,
  encodeData,
  encodeHeartbeat,
  encodeRange,
  encodeReplay,
  encodeReplayEnd,
  encodeResyncRequest,
  type Frame,
  FRAME_FLAG_AUTH,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  FRAME_TYPE,
} from "../../lib/reliable/frame.ts";
import { AUTH_TRAILER_BYTES, sealFrame } from "../../lib/auth/frame.ts";
import { Authenticator, FRESHNESS_MS } from "../../lib/auth/authenticator.ts";
import { REPLAY_WINDOW } from "../../lib/auth/replay_window.ts";
import { AuthenticatedWire, FramedDataWire } from "../../lib/auth/wire.ts";

/** One fuzz target: a name and a fast-check property over one generated input. */
export interface FuzzTarget {
  readonly name: string;
  /** What the property checks, for the report. */
  readonly checks: string;
  /** Runs for the unit test (a fraction of a second each). */
  readonly unitRuns: number;
  readonly property: () => fc.IRawProperty<unknown, boolean>;
}

/**
 * How many generated inputs reached the interesting branch (accepted, ACKed on arrival, parsed as a batch...) by
 * target name: a target whose inputs never get there proves nothing, so the unit test checks it is not 0.
 */
export const ACCEPTED = new Map<string, number>();

function accepted(name: string): void {
  ACCEPTED.set(name, (ACCEPTED.get(name) ?? 0) + 1);
}

/** Outcome of one target's run. */
export interface FuzzResult {
  readonly name: string;
  readonly runs: number;
  readonly seed: number;
  readonly ms: number;
  /** Inputs that reached the interesting branch (see {@link ACCEPTED}). */
  readonly accepted: number;
  /** fast-check's report (counterexample, seed and path to replay) when the property failed. */
  readonly failure?: string;
}

/** Runs `target` for `numRuns` cases from `seed`. */
export async function runTarget(target: FuzzTarget, numRuns: number, seed: number): Promise<FuzzResult> {
  ACCEPTED.set(target.name, 0);
  const start = performance.now();
  const details = await fc.check(target.property(), { numRuns, seed, endOnFailure: false });
  const ms = performance.now() - start;
  return {
    name: target.name,
    runs: details.numRuns,
    seed,
    ms,
    accepted: ACCEPTED.get(target.name) ?? 0,
    failure: details.failed
      ? `${target.name}: seed ${seed}: ${fc.defaultReportMessage(details) ?? "failed"}`
      : undefined,
  };
}

/** Throws (with the message) when `ok` is false: a property's assertion. */
function check(ok: boolean, message: () => string): void {
  if (!ok) throw new Error(message());
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------------------------------------
// Generators

/** Bytes edits: each (offset, value) overwrites one byte (offset taken modulo the length). */
const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 });

/** `base` mutated: a few byte edits, then maybe cut or extended. */
function mutated(base: fc.Arbitrary<Uint8Array>, editsOnly = false): fc.Arbitrary<Uint8Array> {
  return fc.tuple(
    base,
    edits,
    editsOnly ? fc.constant(0) : fc.integer({ min: -8, max: 8 }),
    fc.uint8Array({ maxLength: 8 }),
  ).map(([bytes, changes, resize, extra]) => {
    let out = bytes.slice();
    for (const [at, value] of changes) if (out.length > 0) out[at % out.length] = value;
    if (resize < 0) out = out.slice(0, Math.max(0, out.length + resize));
    else if (resize > 0) {
      const longer = new Uint8Array(out.length + Math.min(resize, extra.length));
      longer.set(out);
      longer.set(extra.subarray(0, longer.length - out.length), out.length);
      out = longer;
    }
    return out;
  });
}

/** Any value a session field might hold on the wire, legal or not (raw bytes are written for the rest). */
const sessionEntry: fc.Arbitrary<SessionEntry> = fc.record({
  proto: fc.integer({ min: 0, max: 2 }),
  state: fc.integer({ min: 0, max: 6 }),
  timer: fc.integer({ min: 0, max: 2 }),
  expiration: fc.oneof(fc.constantFrom(0, 0xffff_ffff), fc.nat({ max: 0xffff_ffff })),
  src6: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  src6Port: fc.nat({ max: 0xffff }),
  dst6: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  dst6Port: fc.nat({ max: 0xffff }),
  src4: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  src4Port: fc.nat({ max: 0xffff }),
  dst4: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  dst4Port: fc.nat({ max: 0xffff }),
});

/** One entry of `format`: valid, with its enum byte(s) overwritten at random, or mutated anywhere. */
function entryBytes(format: SessionFormat): fc.Arbitrary<Uint8Array> {
  const valid = fc.tuple(sessionEntry, fc.boolean()).map(([e, nested]) => encodeEntry(e, format, nested));
  const enumAt = format === "A" ? [112, 120, 128] : format === "B" ? [50, 51] : [38, 39];
  const badEnum = fc.tuple(valid, fc.constantFrom(...enumAt), fc.integer({ min: 0, max: 255 })).map(
    ([bytes, at, value]) => {
      const out = bytes.slice();
      out[at] = value;
      return out;
    },
  );
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 2, arbitrary: badEnum },
    { weight: 2, arbitrary: mutated(valid, true) },
  );
}

/** A datagram for a `format` kernel: entries of any format, mutated, or random bytes. */
function datagram(format: SessionFormat): fc.Arbitrary<Uint8Array> {
  // A few distinct entries, or one repeated up to one entry past the largest datagram (oversize).
  const entries = (f: SessionFormat) =>
    fc.oneof(
      { weight: 8, arbitrary: fc.array(entryBytes(f), { minLength: 1, maxLength: 3 }).map(concat) },
      {
        weight: 1,
        arbitrary: fc.tuple(
          entryBytes(f),
          fc.integer({ min: 1, max: Math.floor(MAX_PAYLOAD / ENTRY_SIZE[f]) + 1 }),
        )
          .map(([e, n]) => concat(Array.from({ length: n }, () => e))),
      },
    );
  return fc.oneof(
    { weight: 5, arbitrary: entries(format) },
    { weight: 2, arbitrary: mutated(entries(format)) },
    { weight: 1, arbitrary: entries(format === "C" ? "A" : "C") },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  );
}

const concat = concatBytes;

/** The Generic Netlink family id the kernel-message targets use. */
export const FUZZ_FAMILY = 0x1d;

/** Fields of one kernel message (multicast or reply), as the generator picks them. */
interface KernelFields {
  familyId: number;
  flags: number;
  seq: number;
  pid: number;
  cmd: number;
  genlVersion: number;
  version: [number, number, number, number];
  xt: number;
  joolFlags: number;
  iname: Uint8Array; // the 16-byte field
  attributes: { type: number; payload: Uint8Array }[];
}

const INAMES = ["default", "DeFault", "nat64-b", "defaul", "default2", "", "x"];

function inameField(name: string): Uint8Array {
  const out = new Uint8Array(16);
  out.set(new TextEncoder().encode(name));
  return out;
}

const kernelFields: fc.Arbitrary<KernelFields> = fc.record({
  familyId: fc.oneof({ weight: 6, arbitrary: fc.constant(FUZZ_FAMILY) }, fc.nat({ max: 0xffff })),
  flags: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 0xffff })),
  seq: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 0xffff_ffff })),
  pid: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 0xffff_ffff })),
  cmd: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 255 })),
  genlVersion: fc.oneof({ weight: 4, arbitrary: fc.constant(2) }, fc.nat({ max: 255 })),
  version: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<[number, number, number, number]>([4, 1, 9, 0], [4, 1, 13, 0]) },
    fc.tuple(
      fc.constantFrom(3, 4, 5),
      fc.constantFrom(0, 1, 2),
      fc.constantFrom(0, 9, 12, 15, 255),
      fc.nat({ max: 255 }),
    ),
  ),
  xt: fc.oneof({ weight: 6, arbitrary: fc.constant(2) }, fc.nat({ max: 255 })),
  joolFlags: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 255 })),
  iname: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...INAMES).map(inameField) },
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
  ),
  attributes: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(datagram("C"), fc.boolean()).map(([payload, nested]) => [
        { type: JNLAR_SESSION_ENTRIES | (nested ? NLA_F_NESTED : 0), payload: payload.subarray(0, 400) },
      ]),
    },
    fc.array(
      fc.record({ type: fc.nat({ max: 0xffff }), payload: fc.uint8Array({ maxLength: 24 }) }),
      { maxLength: 3 },
    ),
  ),
});

/** Encodes `f` as the kernel would (nlmsghdr, genlmsghdr, joolnlhdr, attributes). */
function kernelMessage(f: KernelFields): Uint8Array {
  const attrs = encodeAttributes(f.attributes);
  const out = new Uint8Array(48 + attrs.length);
  writeNetlinkHeader(out, { length: out.length, type: f.familyId, flags: f.flags, seq: f.seq, pid: f.pid });
  writeGenlHeader(out, 16, { cmd: f.cmd, version: f.genlVersion, reserved: 0 });
  out.set([0x6a, 0x6f, 0x6f, 0x6c], 20);
  out.set(f.version, 24);
  out[28] = f.xt;
  out[29] = f.joolFlags;
  out.set(f.iname, 32);
  out.set(attrs, 48);
  return out;
}

const kernelBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: kernelFields.map(kernelMessage) },
  { weight: 4, arbitrary: mutated(kernelFields.map(kernelMessage)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }) },
);

// ---------------------------------------------------------------------------------------------------------
// Oracles

/** The kernel-limit table's verdict on a decoded entry, read independently of the validator. */
function outsideKernelRange(entry: SessionEntry, format: SessionFormat): string | undefined {
  const proto = PROTO_BY_NUMBER[entry.proto];
  if (proto === undefined) return `proto ${entry.proto}`;
  const limits = KERNEL_LIMITS[format][proto];
  for (const [field, limit] of Object.entries(limits) as [LimitedField, { min: number; max: number }][]) {
    if (field === "flags") continue; // not a decoded field: checked on the bytes below
    const value = entry[field];
    if (value === undefined) return `${field} missing`;
    if (value < limit.min || value > limit.max) return `${field} ${value}`;
  }
  return undefined;
}

/** Checks an accepted payload entry by entry: decodes, in the kernel's range, re-encodes byte for byte. */
function checkAccepted(payload: Uint8Array, format: SessionFormat): void {
  const size = ENTRY_SIZE[format];
  check(
    payload.length % size === 0,
    () => `accepted ${payload.length} bytes, not whole ${size}-byte entries`,
  );
  for (let at = 0; at < payload.length; at += size) {
    const bytes = payload.subarray(at, at + size);
    const r = decodeEntry(bytes, format);
    check(r.ok, () => `accepted entry ${at / size} fails decodeEntry: ${JSON.stringify(r)}`);
    if (!r.ok) return;
    const outside = outsideKernelRange(r.entry, format);
    check(
      outside === undefined,
      () => `accepted entry ${at / size} has ${outside} outside the kernel's range`,
    );
    if (format !== "A") {
      const packed = viewOf(bytes).getUint16(size - 2, false);
      check(
        (packed >> 7) <= KERNEL_LIMITS[format].TCP.flags!.max,
        () => `reserved bits in 0x${packed.toString(16)}`,
      );
    }
    const nested = format === "A" && (viewOf(bytes).getUint16(2, HOST_LITTLE_ENDIAN) & NLA_F_NESTED) !== 0;
    const again = encodeEntry(r.entry, format, nested);
    check(sameBytes(again, bytes), () => `entry ${hex(bytes)} re-encodes as ${hex(again)}`);
  }
}

/**
 * What the kernel channel's full path decides for a datagram holding one message: ACK it or not — the full
 * parse and the ACK rule's after-parsing decision (lib/kernel/ack_rule.ts), the oracle of the ACK check.
 */
export function fullPathAcks(datagram: Uint8Array, familyId: number, instance: string): boolean {
  return shouldAck(parseKernelMessage(datagram, familyId), instance);
}

/** A JooldError whose message is one line, or a failure naming what escaped. */
function checkConfigError(error: unknown, text: string): void {
  check(
    error instanceof JooldError,
    () => `${JSON.stringify(text)} threw ${error instanceof Error ? error.name : typeof error}: ${error}`,
  );
  const message = (error as Error).message;
  check(
    !/[\r\n\u2028\u2029]/.test(message),
    () => `${JSON.stringify(text)}: message on several lines: ${message}`,
  );
}

/** Answers like a host with lo, eth0 and eth1 (documentation addresses only). */
const fuzzLookup: HostLookup = {
  interfaceIndex: (name) => ({ lo: 1, eth0: 2, eth1: 3 } as Record<string, number>)[name],
  interfaceAddresses: () => [
    { name: "lo", family: 4, address: "127.0.0.1" },
    { name: "lo", family: 6, address: "::1" },
    { name: "eth0", family: 4, address: "192.0.2.1" },
    { name: "eth0", family: 6, address: "2001:db8::1" },
  ],
  resolveHost: (name) =>
    Promise.resolve(
      ({ "sync-group.example": ["233.252.0.64"], "unicast.example": ["192.0.2.80"] } as Record<
        string,
        string[]
      >)[
        name
      ] ?? [],
    ),
  servicePort: (name) => ({ domain: 53, joold: 6464 } as Record<string, number>)[name],
};

/** JSON values a config field might hold: plausible ones, edge cases and anything. */
const configValue = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "233.252.0.64",
      "ff08::db8:64:64",
      "ff02::db8:64%eth0",
      "ff02::db8:64%nope",
      "233.252.0.64%eth0",
      "192.0.2.80",
      "sync-group.example",
      "unicast.example",
      "no.such.example",
      "eth0",
      "eth1",
      "lo",
      "192.0.2.1",
      "2001:db8::1",
      "6464",
      "joold",
      "domain",
      "65536",
      "0",
      "-1",
      "default",
      "a\nb",
      "x".repeat(16),
      "",
    ),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(fc.integer({ min: -2, max: 70_000 }), fc.double(), fc.boolean(), fc.constant(null)),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
);

/** A key in random case, or a stranger one (control characters included). */
function configKey(keys: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(fc.constantFrom(...keys), fc.nat()).map(([k, bits]) =>
        [...k].map((c, i) => (bits >> (i % 30)) & 1 ? c.toUpperCase() : c).join("")
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom("a\nb", "A\nB", "\u2028", "İnstance") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  );
}

/** A config file's text: an object of those keys (duplicates in other case included), or broken text. */
function configText(keys: readonly string[]): fc.Arbitrary<string> {
  const object = fc.array(fc.tuple(configKey(keys), configValue), { maxLength: 8 }).map((pairs) =>
    "{" + pairs.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v) ?? "null"}`).join(", ") + "}"
  );
  return fc.oneof(
    { weight: 6, arbitrary: object },
    { weight: 1, arbitrary: fc.tuple(object, fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1))) },
    { weight: 1, arbitrary: fc.json() },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  );
}

/** A netsocket.json close to a working one: plausible values per key, then a few keys overridden or added. */
const netsocketText: fc.Arbitrary<string> = fc.tuple(
  fc.record({
    "multicast address": fc.constantFrom(
      "233.252.0.64",
      "ff08::db8:64:64",
      "ff02::db8:64%eth0",
      "sync-group.example",
    ),
    "multicast port": fc.constantFrom("6464", 6464, "joold", "0"),
    "in interface": fc.constantFrom("192.0.2.1", "eth0", "lo", "2001:db8::1"),
    "out interface": fc.constantFrom("192.0.2.1", "eth0", "eth1"),
    reuseaddr: fc.constantFrom(0, 1, 2 ** 31, "1"),
    ttl: fc.constantFrom(0, 1, 255, 256, -1),
  }, { requiredKeys: ["multicast address", "multicast port"] }),
  fc.array(fc.tuple(configKey(NETSOCKET_KEYS), configValue), { maxLength: 2 }),
  fc.nat(),
).map(([fields, extra, caseBits]) => {
  const pairs: [string, unknown][] = [
    ...Object.entries(fields).map(([k, v], i): [string, unknown] => [
      (caseBits >> (i % 30)) & 1 ? k.toUpperCase() : k,
      v,
    ]),
    ...extra,
  ];
  return "{" + pairs.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v) ?? "null"}`).join(", ") + "}";
});

/** Control-message sequences (cmsghdr + data, 8-aligned) with plausible and wrong levels, types and lengths. */
const controlMessages = fc.array(
  fc.record({
    level: fc.constantFrom(0, 41, 1, 255),
    type: fc.constantFrom(8, 50, 49, 29),
    data: fc.uint8Array({ minLength: 4, maxLength: 24, size: "max" }),
    lengthError: fc.constantFrom(0, 0, 0, -1, 1, -16, 100),
  }),
  { maxLength: 3 },
).map((messages) =>
  concatBytes(messages.map(({ level, type, data, lengthError }) => {
    const out = new Uint8Array((16 + data.length + 7) & ~7);
    const view = viewOf(out);
    view.setBigUint64(0, BigInt(Math.max(0, 16 + data.length + lengthError)), HOST_LITTLE_ENDIAN);
    view.setInt32(8, level, HOST_LITTLE_ENDIAN);
    view.setInt32(12, type, HOST_LITTLE_ENDIAN);
    out.set(data, 16);
    return out;
  }))
);

const STATS = new Stats();
STATS.add("NET_RCVD_PKTS", 3);
STATS.drop("net_bad_field");
STATS.kernelError(22);

// ---------------------------------------------------------------------------------------------------------
// Targets

function datagramTarget(format: SessionFormat): FuzzTarget {
  return {
    name: `datagram format ${format}`,
    checks: "validatePayload/upstreamWire.decode: no exception; a drop names a known reason; an accepted " +
      "datagram is passed verbatim, each entry decodes, lies in the kernel's range and re-encodes byte for byte",
    unitRuns: 2000,
    property: () =>
      fc.property(datagram(format), (bytes) => {
        const direct = validatePayload(bytes, format);
        const wire = upstreamWire.decode(bytes, format);
        check(direct.ok === wire.ok, () => "validatePayload and upstreamWire.decode disagree");
        if (!wire.ok) {
          check((DROP_REASONS as readonly string[]).includes(wire.reason), () =>
            `unknown reason ${wire.reason}`);
          check(!/[\r\n]/.test(wire.detail), () =>
            `detail on several lines: ${wire.detail}`);
          return true;
        }
        accepted(`datagram format ${format}`);
        check(wire.payload === bytes, () => "the accepted payload is not the datagram itself");
        check(wire.sessions === bytes.length / ENTRY_SIZE[format], () => `${wire.sessions} sessions counted`);
        checkAccepted(bytes, format);
        return true;
      }),
  };
}

/** Every target, in report order. */
// ---- the pool4 check (docs/protocol.md §11) ----------------------------------------------------------------

const pool4Entry: fc.Arbitrary<Pool4Entry> = fc.record({
  mark: fc.nat({ max: 0xffff_ffff }),
  iterations: fc.nat({ max: 0xffff_ffff }),
  flags: fc.nat({ max: 255 }),
  proto: fc.nat({ max: 2 }),
  // Few distinct addresses and ports, so that sessions land inside as often as outside.
  address: fc.constantFrom(0xc0000201, 0xc0000200, 0xc6336401, 0xcb007100),
  prefixLength: fc.nat({ max: 32 }),
  portMin: fc.nat({ max: 3000 }),
  portMax: fc.nat({ max: 3000 }),
}).map((e) => ({ ...e, portMin: Math.min(e.portMin, e.portMax), portMax: Math.max(e.portMin, e.portMax) }));

const POOL4_REQUEST = encodePool4Foreach(
  {
    familyId: 0x22,
    pid: 1,
    seq: 9,
    version: { major: 4, minor: 1, revision: 13, dev: 0 },
    instance: "default",
  },
  0,
);

const POOL4_TARGETS: FuzzTarget[] = [
  {
    name: "pool4 reply",
    checks: "decodePool4Reply on a listing reply whose attributes are well-formed, mutated or random: no " +
      "exception; what it accepts re-encodes into a reply that decodes to the same entries",
    unitRuns: 2000,
    property: () =>
      fc.property(
        fc.oneof(
          fc.array(pool4Entry, { maxLength: 4 }).map(pool4EntriesAttributes),
          fc.tuple(fc.array(pool4Entry, { minLength: 1, maxLength: 3 }), fc.nat(), fc.nat({ max: 255 })).map(
            ([entries, at, value]) => {
              const bytes = pool4EntriesAttributes(entries).slice();
              bytes[at % bytes.length] = value;
              return bytes;
            },
          ),
          fc.uint8Array({ maxLength: 200 }),
        ),
        fc.constantFrom(0, 0x08),
        (attributes, flags) => {
          const reply = decodePool4Reply(replyTo(POOL4_REQUEST, 0x22, flags, attributes), 0x22, 9);
          if (reply.kind !== "entries") return true;
          if (reply.entries.length > 0) accepted("pool4 reply");
          check(reply.more === (flags === 0x08), () => "flag M misread");
          for (const e of reply.entries) {
            check(e.prefixLength <= 32 && e.portMin <= e.portMax, () => `entry ${JSON.stringify(e)}`);
          }
          const again = decodePool4Reply(
            replyTo(POOL4_REQUEST, 0x22, flags, pool4EntriesAttributes(reply.entries)),
            0x22,
            9,
          );
          check(
            again.kind === "entries" && JSON.stringify(again.entries) === JSON.stringify(reply.entries),
            () => "re-encoded entries decode differently",
          );
          return true;
        },
      ),
  },
  {
    name: "pool4 check",
    checks: "checkPool4 on valid datagrams of every format and any table: kept + dropped = all; every kept " +
      "session is inside (and the kept payload validates, whole entries in order), every dropped one outside",
    unitRuns: 1000,
    property: () =>
      fc.property(
        fc.constantFrom<SessionFormat>("A", "B", "C"),
        fc.array(pool4Entry, { maxLength: 5 }),
        fc.array(
          fc.tuple(
            sessionEntry,
            fc.constantFrom(0xc0000201, 0xc0000202, 0xc6336401, 0xcb007105),
            fc.nat({ max: 3100 }),
          ),
          { minLength: 1, maxLength: 20 },
        ),
        (format, entries, sessions) => {
          const table = pool4Table(entries);
          const bytes = sessions.map(([s, address, port]) => {
            const src4 = new Uint8Array(4);
            viewOf(src4).setUint32(0, address, false);
            return { s: { ...s, src4, src4Port: port }, address, port };
          });
          const payload = concatBytes(bytes.map((b) => encodeEntry(b.s, format)));
          const result = checkPool4(payload, format, table);
          const inside = bytes.filter((b) => inPool4(table, b.s.proto, b.address, b.port));
          check(result.sessions === inside.length, () => `${result.sessions} kept, ${inside.length} inside`);
          check(result.sessions + result.outside === bytes.length, () => "sessions lost in the count");
          check(
            sameBytes(result.payload, concatBytes(inside.map((b) => encodeEntry(b.s, format)))),
            () => "the kept payload is not the inside entries, in order",
          );
          if (result.sessions > 0) {
            check(validatePayload(result.payload, format).ok, () => "the kept payload does not validate");
          }
          if (result.outside > 0 && result.sessions > 0) accepted("pool4 check");
          return true;
        },
      ),
  },
];

// ---- the reliable mode's frame (docs/protocol.md §10) and the authenticated wire (§10.6) --------------------

const u32 = fc.nat({ max: 0xffff_ffff });
/** A sender id: mostly legal, sometimes the refused 0. */
const senderId = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 0xffff_ffff }) }, fc.constant(0));
/** A DATA/REPLAY body's entries (not judged by decodeFrame): sometimes none, which it refuses. */
const frameEntries = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 1, maxLength: 48 }));

/** One frame of any type, from its encoder (flags 0). */
const encodedFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(senderId, u32, frameEntries).map(([s, q, e]) => encodeData(s, q, e)),
  fc.tuple(senderId, u32, u32, u32, frameEntries).map(([s, q, t, o, e]) => encodeReplay(s, q, t, o, e)),
  fc.tuple(senderId, u32, u32, u32, u32).map(([s, q, t, n, f]) => encodeReplayEnd(s, q, t, n, f)),
  fc.tuple(fc.constantFrom(FRAME_TYPE.NACK, FRAME_TYPE.UNAVAILABLE), senderId, u32, u32, u32, u32).map((
    [type, s, l, t, f, e],
  ) => encodeRange(type, s, l, t, f, e)),
  fc.tuple(senderId, u32, u32, u32).map(([s, l, c, h]) => encodeHeartbeat(s, l, c, h)),
  fc.tuple(senderId, u32, u32).map(([s, l, t]) => encodeResyncRequest(s, l, t)),
);

/** Whether an encoder's output (flags 0) is one decodeFrame must take: sender not 0, DATA/REPLAY not empty. */
function legalEncoded(bytes: Uint8Array): boolean {
  const sender = viewOf(bytes).getUint32(8, false);
  const minBody = bytes[5] === FRAME_TYPE.DATA ? 1 : bytes[5] === FRAME_TYPE.REPLAY ? 9 : 0;
  return sender !== 0 && bytes.length - FRAME_HEADER_BYTES >= minBody;
}

/** `frame` encoded again with the encoder of its type (flags 0). */
function reencodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FRAME_TYPE.DATA:
      return encodeData(frame.sender, frame.seq, frame.entries);
    case FRAME_TYPE.REPLAY:
      return encodeReplay(frame.sender, frame.seq, frame.target, frame.origin, frame.entries);
    case FRAME_TYPE.REPLAY_END:
      return encodeReplayEnd(frame.sender, frame.seq, frame.target, frame.sessions, frame.first);
    case FRAME_TYPE.NACK:
    case FRAME_TYPE.UNAVAILABLE:
      return encodeRange(frame.type, frame.sender, frame.latest, frame.target, frame.first, frame.last);
    case FRAME_TYPE.HEARTBEAT:
      return encodeHeartbeat(frame.sender, frame.latest, frame.count, frame.hash);
    default:
      return encodeResyncRequest(frame.sender, frame.latest, frame.target);
  }
}

/** Sets the authentication flag in a copy of `bytes` (when it has a flags field). */
function withAuthFlag(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length >= 8) out[7] |= FRAME_FLAG_AUTH;
  return out;
}

/** The magic followed by anything: past the first check, into the header's. */
const magicThenBytes = fc.uint8Array({ maxLength: 40 }).map((rest) => concat([FRAME_MAGIC, rest]));

const RELIABLE_FRAME_TARGET: FuzzTarget = {
  name: "reliable frame",
  checks:
    "decodeFrame (flags 0 or auth): no exception; a drop names a known reason on one line; an encoder's " +
    "legal frame is taken; what is taken re-encodes byte for byte with its type's encoder",
  unitRuns: 3000,
  property: () =>
    fc.property(
      fc.oneof(
        { weight: 4, arbitrary: encodedFrame.map((bytes) => ({ bytes, encoded: true })) },
        { weight: 4, arbitrary: mutated(encodedFrame).map((bytes) => ({ bytes, encoded: false })) },
        { weight: 1, arbitrary: magicThenBytes.map((bytes) => ({ bytes, encoded: false })) },
        {
          weight: 1,
          arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ bytes, encoded: false })),
        },
      ),
      fc.boolean(),
      fc.constantFrom(0, FRAME_FLAG_AUTH),
      ({ bytes: raw, encoded }, flagged, flags) => {
        const bytes = flagged ? withAuthFlag(raw) : raw;
        const r = decodeFrame(bytes, flags);
        if (encoded) {
          const expected = legalEncoded(raw) && flagged === (flags === FRAME_FLAG_AUTH);
          check(r.ok === expected, () => `${hex(bytes)} with flags ${flags}: ${JSON.stringify(r)}`);
        }
        if (!r.ok) {
          check((DROP_REASONS as readonly string[]).includes(r.reason), () => `unknown reason ${r.reason}`);
          check(!/[\r\n]/.test(r.detail), () => `detail on several lines: ${r.detail}`);
          return true;
        }
        accepted("reliable frame");
        check(r.frame.sender !== 0, () => "sender id 0 taken");
        const again = flags ? withAuthFlag(reencodeFrame(r.frame)) : reencodeFrame(r.frame);
        check(sameBytes(again, bytes), () => `frame ${hex(bytes)} re-encodes as ${hex(again)}`);
        if (r.frame.type === FRAME_TYPE.DATA || r.frame.type === FRAME_TYPE.REPLAY) {
          const at = r.frame.type === FRAME_TYPE.DATA ? 16 : 24;
          check(
            r.frame.entries.buffer === bytes.buffer && r.frame.entries.byteOffset === bytes.byteOffset + at &&
              r.frame.entries.length === bytes.length - at,
            () => "the entries are not the frame's own bytes after the body's fields",
          );
        }
        return true;
      },
    ),
};

/** Keys of the authenticated-datagram target: the receiver is configured with some of them, never the third. */
const AUTH_KEYS = [1, 2, 3].map((k) => new TextEncoder().encode(`fuzz key ${k} `.repeat(k * 3)));
/** The receiver's configurations: one key, a rollover either way. */
const RECEIVER_KEYS = [[0], [0, 1], [1, 0]] as const;
/** Sender ids: two peers, the receiver's own id, 0 and the largest. */
const OWN_SENDER = 0x0000_0a0a;
const AUTH_SENDERS = [0x1111_1111, 0x2222_2222, OWN_SENDER, 0, 0xffff_ffff];
/** The wall clock when a run starts (2027); it only moves forward, by less than RETAIN_MS over a whole run. */
const CLOCK_START = 1_800_000_000_000;

/** A datagram's mutation: bit flips, then a cut or an extension (see {@link applyMutation}). */
interface Mutation {
  flips: [number, number][];
  resize: number;
  extra: Uint8Array;
}

/** Receives, or seals then delivers (maybe mutated), or delivers a past datagram again, or random bytes. */
type AuthStep =
  | {
    kind: "seal";
    /** By sealFrame with a chosen counter, or by a sender's Authenticator (its own next counter, its clock). */
    byAuthenticator: boolean;
    sender: number;
    key: number;
    counter: number;
    skewMs: number;
    frame: Uint8Array;
    m: Mutation | undefined;
    advanceMs: number;
  }
  | { kind: "again"; index: number; m: Mutation | undefined; advanceMs: number }
  | { kind: "random"; bytes: Uint8Array; advanceMs: number };

const mutation: fc.Arbitrary<Mutation | undefined> = fc.option(
  fc.tuple(
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { maxLength: 3 }),
    fc.integer({ min: -60, max: 8 }),
    fc.uint8Array({ minLength: 8, maxLength: 8 }),
  ).map(([flips, resize, extra]) => ({ flips, resize, extra })),
  { nil: undefined, freq: 2 },
);

function applyMutation(bytes: Uint8Array, m: Mutation | undefined): Uint8Array {
  if (!m) return bytes;
  let out: Uint8Array = bytes.slice();
  for (const [at, bit] of m.flips) if (out.length > 0) out[at % out.length] ^= 1 << bit;
  if (m.resize < 0) out = out.slice(0, Math.max(0, out.length + m.resize));
  else if (m.resize > 0) out = concat([out, m.extra.subarray(0, m.resize)]);
  return out;
}

const advance = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.nat({ max: 10_000 }));

const authStep: fc.Arbitrary<AuthStep> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("seal" as const),
      byAuthenticator: fc.boolean(),
      sender: fc.constantFrom(...AUTH_SENDERS),
      key: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.constantFrom(1, 2)),
      counter: fc.oneof(
        fc.nat({ max: 40 }),
        fc.nat({ max: 3000 }),
        fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1),
      ),
      skewMs: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
        fc.constantFrom(-60_001, -60_000, 60_000, 60_001),
        fc.integer({ min: -200_000, max: 200_000 }),
      ),
      frame: fc.oneof(
        encodedFrame,
        // DATA frames of real entries, so that FramedDataWire takes some.
        fc.tuple(u32, datagram("C")).map(([seq, entries]) => encodeData(1, seq, entries)),
      ),
      m: mutation,
      advanceMs: advance,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("again" as const),
      index: fc.nat(),
      m: mutation,
      advanceMs: advance,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("random" as const),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 120 }),
        fc.uint8Array({ minLength: 8, maxLength: 120 }).map((b) => withAuthFlag(concat([FRAME_MAGIC, b]))),
      ),
      advanceMs: advance,
    }),
  },
);

/** A sealed datagram as the model knows it. */
interface Sealed {
  readonly bytes: Uint8Array;
  readonly sender: number;
  readonly counter: number;
  readonly timeMs: number;
  /** Sealed with a key the receiver has. */
  readonly configured: boolean;
}

/** The model of the receiver's replay window: counters taken and the highest, per sender. */
class WindowModel {
  readonly #taken = new Map<number, { highest: number; counters: Set<number> }>();
  fresh(sender: number, counter: number): boolean {
    const w = this.#taken.get(sender);
    if (!w) return true;
    if (counter > w.highest) return true;
    return w.highest - counter < REPLAY_WINDOW && !w.counters.has(counter);
  }
  take(sender: number, counter: number): void {
    const w = this.#taken.get(sender) ?? { highest: -1, counters: new Set<number>() };
    this.#taken.set(sender, w);
    w.counters.add(counter);
    w.highest = Math.max(w.highest, counter);
  }
}

const AUTH_REASONS = ["net_auth_missing", "net_auth_bad", "net_auth_replay", "net_auth_stale"];

const AUTHENTICATED_DATAGRAM_TARGET: FuzzTarget = {
  name: "authenticated datagram",
  checks: "Authenticator.open, AuthenticatedWire(FramedDataWire).decode: no exception; a datagram is taken " +
    "exactly when it is byte-identical to one sealed with a configured key, from another sender, fresh " +
    "(±60 s) and not taken before (a model of the replay window); it yields the sealed frame without its " +
    "trailer; the wire's verdict is the authenticator's, then FramedDataWire's on that frame",
  unitRuns: 400,
  property: () =>
    fc.property(
      fc.constantFrom(...RECEIVER_KEYS),
      fc.array(authStep, { minLength: 1, maxLength: 10 }),
      (keyIdx, steps) => {
        let clock = CLOCK_START;
        const now = () => clock;
        const keys = keyIdx.map((i) => AUTH_KEYS[i]);
        const receiver = new Authenticator(keys, now);
        // A second receiver in the same state behind the wire: open() takes counters, so each sees it once.
        const wireAuth = new Authenticator(keys, now);
        const wire = new AuthenticatedWire(new FramedDataWire(), wireAuth);
        // The receiver has sent a frame of its own: that id is its own from then on.
        const own = encodeHeartbeat(OWN_SENDER, 1, 0, 0);
        const ownSealed = receiver.seal(own);
        wireAuth.seal(own);
        const senders = AUTH_KEYS.map((k) => new Authenticator([k], now));
        const senderCounters = AUTH_KEYS.map(() => 0);
        const macs = AUTH_KEYS.map((k) => (d: Uint8Array) => createHmac("sha256", k).update(d).digest());
        const sealed = new Map<string, Sealed>();
        sealed.set(hex(ownSealed), {
          bytes: ownSealed,
          sender: OWN_SENDER,
          counter: 1,
          timeMs: clock,
          configured: true,
        });
        const delivered: Uint8Array[] = [ownSealed];
        const model = new WindowModel();
        let taken = false;
        for (const step of steps) {
          let datagram: Uint8Array;
          if (step.kind === "seal") {
            const frame = step.frame.slice();
            viewOf(frame).setUint32(8, step.sender, false);
            let bytes: Uint8Array;
            let counter: number;
            let timeMs: number;
            if (step.byAuthenticator) {
              bytes = senders[step.key].seal(frame);
              counter = ++senderCounters[step.key];
              timeMs = clock;
            } else {
              counter = step.counter;
              timeMs = Math.max(0, clock + step.skewMs);
              bytes = sealFrame(frame, counter, timeMs, macs[step.key]);
            }
            const record: Sealed = {
              bytes,
              sender: step.sender,
              counter,
              timeMs,
              configured: (keyIdx as readonly number[]).includes(step.key),
            };
            // Two sealings of the same bytes (same key, fields, counter and time) are one datagram.
            if (!sealed.has(hex(bytes)) || record.configured) sealed.set(hex(bytes), record);
            datagram = applyMutation(bytes, step.m);
          } else if (step.kind === "again") {
            datagram = applyMutation(delivered[step.index % delivered.length], step.m);
          } else datagram = step.bytes;
          delivered.push(datagram);

          const opened = receiver.open(datagram);
          const viaWire = wire.decode(datagram, "C");
          const known = sealed.get(hex(datagram));
          let expect: string;
          if (!known || !known.configured) expect = "refused";
          else if (known.sender === OWN_SENDER || !model.fresh(known.sender, known.counter)) {
            expect = "net_auth_replay";
          } else if (Math.abs(known.timeMs - clock) > FRESHNESS_MS) expect = "net_auth_stale";
          else expect = "ok";
          if (expect === "ok") model.take(known!.sender, known!.counter);

          check(
            opened.ok
              ? expect === "ok"
              : expect === "refused"
              ? AUTH_REASONS.includes(opened.reason)
              : opened.reason === expect,
            () =>
              `${hex(datagram)} at ${clock}: expected ${expect}, got ${JSON.stringify(opened)}` +
              (known ? ` (sender ${known.sender}, counter ${known.counter}, time ${known.timeMs})` : ""),
          );
          if (!opened.ok) {
            check(!/[\r\n]/.test(opened.detail), () => `detail on several lines: ${opened.detail}`);
            check(
              viaWire.ok === false && viaWire.reason === opened.reason,
              () => `the wire says ${JSON.stringify(viaWire)}, the authenticator ${opened.reason}`,
            );
          } else {
            taken = true;
            const frame = datagram.subarray(0, datagram.length - AUTH_TRAILER_BYTES);
            check(sameBytes(opened.frame, frame), () => `opened ${hex(opened.frame)}, sealed ${hex(frame)}`);
            const direct = new FramedDataWire().decode(opened.frame, "C");
            check(
              direct.ok === viaWire.ok &&
                (direct.ok || (viaWire.ok === false && viaWire.reason === direct.reason)),
              () => `the wire says ${JSON.stringify(viaWire)}, FramedDataWire ${JSON.stringify(direct)}`,
            );
            if (viaWire.ok === true && direct.ok) {
              check(sameBytes(viaWire.payload, direct.payload), () => "the wire's payload differs");
              check(
                sameBytes(viaWire.payload, frame.subarray(FRAME_HEADER_BYTES)),
                () => "the payload is not the DATA frame's entries",
              );
            }
          }
          if (viaWire.ok === false) {
            check((DROP_REASONS as readonly string[]).includes(viaWire.reason), () =>
              `unknown reason ${viaWire.reason}`);
          }
          clock += step.advanceMs;
        }
        // Counted once per run (a run is several datagrams): the share of runs in which one was taken.
        if (taken) {
          accepted("authenticated datagram");
        }
        return true;
      },
    ),
};

const FRAME_TARGETS: FuzzTarget[] = [RELIABLE_FRAME_TARGET, AUTHENTICATED_DATAGRAM_TARGET];

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: "kernel message",
    checks:
      "parseKernelMessage: no exception; a batch's payload is its first attribute verbatim; a message " +
      "built from fields parses back to them",
    unitRuns: 2000,
    property: () =>
      fc.property(fc.oneof(kernelBytes, kernelFields.map((f) => [f] as const)), (input) => {
        const built = input instanceof Uint8Array ? undefined : input[0];
        const bytes = built ? kernelMessage(built) : input as Uint8Array;
        const m = parseKernelMessage(bytes, FUZZ_FAMILY);
        if (m.kind === "batch") {
          accepted("kernel message");
          const at = 48;
          const len = viewOf(bytes).getUint16(at, HOST_LITTLE_ENDIAN);
          check(
            m.payload.buffer === bytes.buffer && m.payload.byteOffset === bytes.byteOffset + at + 4 &&
              m.payload.length === len - 4,
            () => "the batch payload is not the first attribute's bytes",
          );
        }
        if (built && built.familyId === FUZZ_FAMILY && built.xt === 2) {
          const header = readJoolHeader(bytes, 20);
          if (header.ok) {
            check(m.kind !== "invalid" && m.kind !== "other", () => `a well-formed message is ${m.kind}`);
            if (m.kind === "batch" || m.kind === "jool_reply") {
              check(m.seq === built.seq && m.header.flags === built.joolFlags, () => "seq/flags differ");
              check(
                packVersion(m.header.version) === packVersion({
                  major: built.version[0],
                  minor: built.version[1],
                  revision: built.version[2],
                  dev: built.version[3],
                }),
                () => "version differs",
              );
              const firstIsBatch = built.attributes.length > 0 &&
                (built.attributes[0].type & 0x3fff) === JNLAR_SESSION_ENTRIES;
              check((m.kind === "batch") === firstIsBatch, () =>
                `${m.kind} for attributes ${built.attributes}`);
              if (m.kind === "batch") {
                check(sameBytes(m.payload, built.attributes[0].payload), () =>
                  "payload differs");
              }
            }
          }
        }
        return true;
      }),
  },
  {
    name: "netlink datagram split",
    checks:
      "splitMessages: no exception; the messages are the datagram's own bytes, each at the aligned end " +
      "of the one before, and cover it all when no error is reported",
    unitRuns: 2000,
    property: () =>
      fc.property(
        fc.oneof(
          fc.array(kernelBytes, { maxLength: 3 }).map((ms) => concat(ms.map((m) => padTo4(m)))),
          mutated(fc.array(kernelFields.map(kernelMessage), { minLength: 1, maxLength: 3 }).map(concat)),
          fc.uint8Array({ maxLength: 80 }),
        ),
        (bytes) => {
          const { messages, error } = splitMessages(bytes);
          let at = 0;
          for (const m of messages) {
            check(
              m.buffer === bytes.buffer && m.byteOffset === bytes.byteOffset + at && m.length >= NLMSG_HDRLEN,
              () => `message at ${at} is not the datagram's bytes`,
            );
            check(viewOf(m).getUint32(0, HOST_LITTLE_ENDIAN) === m.length, () =>
              "length differs from nlmsg_len");
            at += align4(m.length);
          }
          if (messages.length > 0) {
            accepted("netlink datagram split");
          }
          if (error === undefined) {
            check(at >= bytes.length, () =>
              `${bytes.length - at} bytes left unreported`);
          } else check(at < bytes.length, () => `error "${error}" with nothing left`);
          return true;
        },
      ),
  },
  {
    name: "ack check",
    checks:
      "ackableBatchVersion never accepts a datagram the full path (parseKernelMessage + the channel's " +
      "rules) would not ACK, and returns the header's version when it accepts",
    unitRuns: 5000,
    property: () =>
      fc.property(
        kernelBytes,
        fc.constantFrom("default", "DEFAULT", "", "nat64-b", "other"),
        (bytes, instance) => {
          const version = ackableBatchVersion(bytes, FUZZ_FAMILY, instanceKey(instance));
          if (version === 0) return true;
          accepted("ack check");
          check(fullPathAcks(bytes, FUZZ_FAMILY, instance), () => `ACKed on arrival only: ${hex(bytes)}`);
          check(version === viewOf(bytes).getUint32(24, false), () => `version 0x${version.toString(16)}`);
          return true;
        },
      ),
  },
  datagramTarget("A"),
  datagramTarget("B"),
  datagramTarget("C"),
  {
    name: "session entry",
    checks:
      "encodeEntry accepts exactly the in-range entries and decodeEntry gives them back; decodeEntry on " +
      "any entry-sized bytes throws nothing and what it accepts re-encodes byte for byte",
    unitRuns: 2000,
    property: () =>
      fc.property(
        fc.constantFrom<SessionFormat>("A", "B", "C"),
        sessionEntry,
        fc.record({
          proto: fc.integer({ min: -1, max: 4 }),
          state: fc.integer({ min: -1, max: 8 }),
          timer: fc.integer({ min: -1, max: 4 }),
        }),
        fc.boolean(),
        fc.uint8Array({ minLength: 140, maxLength: 140 }),
        (format, base, enums, raw, noise) => {
          const entry = raw ? { ...base, ...enums } : base;
          let bytes: Uint8Array | undefined;
          try {
            bytes = encodeEntry(entry, format);
          } catch (error) {
            check(error instanceof RangeError, () => `encodeEntry threw ${error}`);
          }
          const outside = outsideKernelRange(entry, format);
          check((bytes === undefined) === (outside !== undefined), () => `encode accepted ${outside}`);
          if (bytes) {
            accepted("session entry");
            const r = decodeEntry(bytes, format);
            check(r.ok, () => `decodeEntry refused its own encoding: ${JSON.stringify(r)}`);
            if (r.ok) {
              for (const [k, v] of Object.entries(r.entry)) {
                const want = (entry as unknown as Record<string, unknown>)[k];
                check(
                  v instanceof Uint8Array ? sameBytes(v, want as Uint8Array) : v === want,
                  () => `${k} came back as ${v}`,
                );
              }
            }
          }
          const sized = noise.slice(0, ENTRY_SIZE[format]);
          viewOf(sized).setUint16(0, ENTRY_SIZE[format], HOST_LITTLE_ENDIAN);
          const r = decodeEntry(sized, format);
          if (r.ok) checkAccepted(sized, format);
          return true;
        },
      ),
  },
  {
    name: "netsocket.json",
    checks:
      "parseConfigText + validateNetSocket: a config or a JooldError with a one-line message, nothing else",
    unitRuns: 1000,
    property: () =>
      fc.asyncProperty(fc.oneof(netsocketText, configText(NETSOCKET_KEYS)), async (text) => {
        try {
          await validateNetSocket(parseConfigText("netsocket.json", text), fuzzLookup, new MemoryLogger());
          accepted("netsocket.json");
        } catch (error) {
          checkConfigError(error, text);
        }
        return true;
      }),
  },
  {
    name: "packet info",
    checks:
      "parsePacketInfo on any control bytes: no exception; an interface index only from a whole message",
    unitRuns: 1000,
    property: () =>
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 128 }), controlMessages),
        fc.integer({ min: -8, max: 128 }), // negative: the whole buffer
        (bytes, cut) => {
          const length = cut < 0 ? bytes.length : Math.min(cut, bytes.length);
          const info = parsePacketInfo(
            new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            length,
          );
          if (info.interfaceIndex !== undefined) {
            accepted("packet info");
            check(length >= 28, () => `an index from ${length} bytes`);
          }
          return true;
        },
      ),
  },
  {
    name: "accept from prefix",
    checks:
      "parsePrefix on any text: no exception; an accepted prefix has host bits zero and contains itself",
    unitRuns: 1000,
    property: () =>
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 48 }),
          fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 33 })).map(([a, l]) => `${a}/${l}`),
          fc.tuple(fc.ipV6(), fc.integer({ min: -1, max: 129 })).map(([a, l]) => `${a}/${l}`),
        ),
        (text) => {
          const parsed = parsePrefix(text);
          if (isPrefix(parsed)) {
            accepted("accept from prefix");
            check(prefixContains(parsed, parsed.bytes), () => `${text} does not contain its own network`);
            const reparsed = parsePrefix(prefixText(parsed));
            check(isPrefix(reparsed) && prefixText(reparsed) === prefixText(parsed), () =>
              `${text} round trip`);
          } else {
            check(!/[\r\n]/.test(parsed.problem), () =>
              `problem on several lines: ${parsed.problem}`);
          }
          return true;
        },
      ),
  },
  {
    name: "modsocket.json",
    checks:
      "parseConfigText + validateModSocket: a config or a JooldError with a one-line message, nothing else",
    unitRuns: 1000,
    property: () =>
      fc.property(configText(["instance"]), (text) => {
        try {
          const config = validateModSocket(parseConfigText("modsocket.json", text), new MemoryLogger());
          check(config.instance.length > 0 && config.instance.length <= 15, () =>
            `instance ${config.instance}`);
          accepted("modsocket.json");
        } catch (error) {
          checkConfigError(error, text);
        }
        return true;
      }),
  },
  {
    name: "stats request",
    checks:
      "renderForRequest on any datagram's text: no exception; one of the three views (JSON that parses)",
    unitRuns: 1000,
    property: () =>
      fc.property(
        fc.oneof(
          fc.constantFrom("json", " JSON\n", "prometheus", "Metrics\r\n", "", "\0").map((t) =>
            new TextEncoder().encode(t)
          ),
          fc.uint8Array({ maxLength: 64 }),
        ),
        (request) => {
          const snapshot = STATS.snapshot();
          const reply = renderForRequest(new TextDecoder().decode(request), snapshot, {
            instance: "default",
          });
          const views = [
            renderCsvText(snapshot),
            renderJson(snapshot, { instance: "default" }),
            renderPrometheus(snapshot),
          ];
          check(views.includes(reply), () => `reply is none of the views: ${reply.slice(0, 40)}`);
          if (reply !== views[0]) accepted("stats request");
          if (reply === views[1]) JSON.parse(reply);
          return true;
        },
      ),
  },
  ...POOL4_TARGETS,
  ...FRAME_TARGETS,
];

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(bytes.length));
  out.set(bytes);
  return out;
}
