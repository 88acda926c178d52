/** Netlink, genl, attribute and Jool-header codecs against byte vectors built from the layouts of docs/protocol.md §1.3, §2.1, §3.1, §4.1. */
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import {
  encodeGlobalForeach,
  encodeJooldAck,
  encodeJooldAdd,
  encodeJooldAdvertise,
  parseKernelMessage,
  type RequestContext,
  ssEnabledOf,
} from "../../lib/jool/messages.ts";
import {
  encodeIname,
  inameError,
  packVersion,
  readJoolHeader,
  sameInstance,
  unpackVersion,
} from "../../lib/jool/header.ts";
import { ackableBatchVersion, instanceKey } from "../../lib/jool/ack_check.ts";
import {
  encodeAttributes,
  parseAttributes,
  readNetlinkHeader,
  splitMessages,
  u16,
  u32,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";

function hex(text: string): Uint8Array {
  const clean = text.replace(/[^0-9a-f]/gi, "");
  return Uint8Array.from(clean.match(/../g)!, (b) => parseInt(b, 16));
}

/** The §1.6 example entry: ICMP 2001:db8::8#5831 ↔ 192.0.2.1#2168 → 192.0.2.8#2168, 59 000 ms. */
const SPEC_ENTRY = hex(
  "28000100 20010db8 00000000 00000000 00000008 c0000201 c0000208 0000e678 16c7 0878 0878 0040",
);

/** The §2.4 multicast: family 0x22, instance "default", Jool 4.1.15, one entry; 92 bytes. */
const SPEC_MULTICAST = hex(
  "5c000000 2200 0000 00000000 00000000" + "00020000" + "6a6f6f6c 04010f00 02000000" +
    "64656661756c7400 0000000000000000" + "2c00 0780",
);

Deno.test("docs/protocol.md §2.1: the 92-byte multicast is ACKed on arrival by a daemon of instance default (and only that)", () => {
  const message = new Uint8Array([...SPEC_MULTICAST, ...SPEC_ENTRY]);
  assertEquals(ackableBatchVersion(message, 0x22, instanceKey("default")), 0x04010f00);
  assertEquals(ackableBatchVersion(message, 0x22, instanceKey("nat64")), 0);
  assertEquals(ackableBatchVersion(message, 0x23, instanceKey("default")), 0);
});

const CONTEXT: RequestContext = {
  familyId: 0x22,
  pid: 0x80001234,
  seq: 0x01020304,
  version: { major: 4, minor: 1, revision: 15, dev: 0 },
  instance: "default",
};

Deno.test("docs/protocol.md §2.1: the 92-byte multicast parses into a batch with the entry verbatim", () => {
  const message = new Uint8Array([...SPEC_MULTICAST, ...SPEC_ENTRY]);
  assertEquals(message.length, 92);
  const m = parseKernelMessage(message, 0x22);
  assert(m.kind === "batch", m.kind);
  assertEquals(m.header, {
    version: { major: 4, minor: 1, revision: 15, dev: 0 },
    xt: 2,
    flags: 0,
    iname: "default",
  });
  assertEquals([m.seq, m.pid], [0, 0]);
  assertEquals(m.payload, SPEC_ENTRY);
});

Deno.test("docs/protocol.md §4.1: the 40-byte datagram becomes the 92-byte JOOLD_ADD", () => {
  const expected = hex(
    "5c000000 2200 0100 04030201 34120080" + "1b010000" + "6a6f6f6c 04010f00 02000000" +
      "64656661756c7400 0000000000000000" + "2c00 0780",
  );
  assertEquals(encodeJooldAdd(CONTEXT, SPEC_ENTRY), new Uint8Array([...expected, ...SPEC_ENTRY]));
});

Deno.test("JOOLD_ADD pads a payload that is not 4-aligned; nla_len excludes the padding", () => {
  const add = encodeJooldAdd(CONTEXT, Uint8Array.of(1, 2, 3));
  assertEquals(add.length, 48 + 8);
  assertEquals(readNetlinkHeader(add).length, 56);
  assertEquals([...add.subarray(48)], [7, 0, 0x07, 0x80, 1, 2, 3, 0]);
});

Deno.test("docs/protocol.md §3.1: JOOLD_ACK is 48 bytes, cmd 29, no attributes; ADVERTISE is cmd 28", () => {
  const ack = encodeJooldAck(CONTEXT);
  assertEquals(ack.length, 48);
  assertEquals(readNetlinkHeader(ack), {
    length: 48,
    type: 0x22,
    flags: 1,
    seq: 0x01020304,
    pid: 0x80001234,
  });
  assertEquals([...ack.subarray(16, 20)], [29, 1, 0, 0]);
  const ad = encodeJooldAdvertise(CONTEXT);
  assertEquals(ad.length, 48);
  assertEquals(ad[16], 28);
  assertEquals(ad.subarray(20), ack.subarray(20));
});

Deno.test("GLOBAL_FOREACH: cmd 8, no attribute first, OFFSET_U8 (9) when continuing", () => {
  const first = encodeGlobalForeach(CONTEXT);
  assertEquals([first.length, first[16]], [48, 8]);
  const next = encodeGlobalForeach(CONTEXT, 26);
  assertEquals([...next.subarray(48)], [5, 0, 9, 0, 26, 0, 0, 0]);
});

function reply(flags: number, attributes: { type: number; payload: Uint8Array }[], seq = 9, pid = 5) {
  const attrs = encodeAttributes(attributes);
  const out = new Uint8Array(48 + attrs.length);
  out.set(SPEC_MULTICAST.subarray(0, 48));
  writeNetlinkHeader(out, { length: out.length, type: 0x22, flags: 0, seq, pid });
  out[29] = flags;
  out.set(attrs, 48);
  return out;
}

Deno.test("kernel replies: Jool error (code + message), success with globals and flag M", () => {
  const err = parseKernelMessage(
    reply(1, [{ type: 1, payload: u16(3) }, {
      type: 2,
      payload: new TextEncoder().encode("This namespace lacks an instance named 'default'.\0"),
    }]),
    0x22,
  );
  assertEquals(err.kind === "jool_error" && [err.code, err.message, err.seq], [
    3,
    "This namespace lacks an instance named 'default'.",
    9,
  ]);
  const ok = parseKernelMessage(
    reply(8, [{ type: 26, payload: u32(10) }, { type: 27, payload: Uint8Array.of(1) }]),
    0x22,
  );
  assert(ok.kind === "jool_reply");
  assertEquals([ok.more, ok.pid, ssEnabledOf(ok.attributes)], [true, 5, true]);
  const empty = parseKernelMessage(reply(0, []), 0x22);
  assert(empty.kind === "jool_reply");
  assertEquals([empty.more, empty.attributes.length, ssEnabledOf(empty.attributes)], [false, 0, undefined]);
});

Deno.test("kernel messages: NLMSG_ERROR/DONE/OVERRUN, other families, malformed Jool messages", () => {
  const error = new Uint8Array(36);
  writeNetlinkHeader(error, { length: 36, type: 2, flags: 0, seq: 7, pid: 1 });
  new DataView(error.buffer).setInt32(16, -22, true);
  assertEquals(parseKernelMessage(error, 0x22), { kind: "netlink_error", seq: 7, error: 22 });
  const done = new Uint8Array(20);
  writeNetlinkHeader(done, { length: 20, type: 3, flags: 2, seq: 8, pid: 1 });
  assertEquals(parseKernelMessage(done, 0x22), { kind: "done", seq: 8 });
  writeNetlinkHeader(done, { length: 20, type: 4, flags: 0, seq: 0, pid: 0 });
  assertEquals(parseKernelMessage(done, 0x22).kind, "overrun");
  writeNetlinkHeader(done, { length: 20, type: 0x23, flags: 0, seq: 0, pid: 0 });
  assertEquals(parseKernelMessage(done, 0x22), { kind: "other", type: 0x23 });

  const full = new Uint8Array([...SPEC_MULTICAST, ...SPEC_ENTRY]);
  const short = full.slice(0, 40);
  writeNetlinkHeader(short, { length: 40, type: 0x22, flags: 0, seq: 0, pid: 0 });
  const problems = (m: Uint8Array) => {
    const r = parseKernelMessage(m, 0x22);
    return r.kind === "invalid" ? r.problem : r.kind;
  };
  assertEquals(problems(short), "kernel_bad_message");
  const magic = full.slice();
  magic[23] = 0x4c;
  assertEquals(problems(magic), "kernel_bad_message");
  const siit = full.slice();
  siit[28] = 1;
  assertEquals(problems(siit), "kernel_bad_message");
  const badAttr = full.slice();
  badAttr[48] = 0x60; // container claims 96 bytes
  assertEquals(problems(badAttr), "kernel_bad_message");
  const noNul = full.slice();
  noNul.fill(0x41, 32, 48);
  assertEquals(problems(noNul), "kernel_bad_message");
  // Any genl cmd is accepted from the kernel.
  const cmd = full.slice();
  cmd[16] = 27;
  assertEquals(problems(cmd), "batch");
});

Deno.test("attributes: nla_len excludes padding, flags are masked, truncation is an error", () => {
  const bytes = encodeAttributes([{ type: 0x8001, payload: Uint8Array.of(9) }, {
    type: 0x4002,
    payload: u16(5),
  }]);
  assertEquals([...bytes], [5, 0, 1, 0x80, 9, 0, 0, 0, 6, 0, 2, 0x40, 5, 0, 0, 0]);
  const parsed = parseAttributes(bytes);
  assert(parsed.ok);
  assertEquals(parsed.attributes.map((a) => [a.type, a.nested, a.netByteOrder, a.payload.length]), [
    [1, true, false, 1],
    [2, false, true, 2],
  ]);
  assertEquals(parseAttributes(bytes.subarray(0, 12)).ok, false);
  assertEquals(parseAttributes(Uint8Array.of(2, 0, 1, 0)).ok, false, "nla_len below 4");
  // The last attribute may come without its padding.
  assert(parseAttributes(bytes.subarray(0, 14)).ok);
});

Deno.test("datagrams split into messages at 4-byte boundaries; a bad length is reported", () => {
  const one = new Uint8Array([...SPEC_MULTICAST, ...SPEC_ENTRY]);
  const two = new Uint8Array([...one, ...one]);
  assertEquals(splitMessages(two).messages.length, 2);
  const broken = two.slice(0, 100);
  const r = splitMessages(broken);
  assertEquals(r.messages.length, 1);
  assert(r.error);
});

Deno.test("Jool header: version packing, iname rules, case-insensitive instance match", () => {
  assertEquals(packVersion({ major: 4, minor: 1, revision: 9, dev: 0 }), 0x04010900);
  assertEquals(unpackVersion(0x04010f00), { major: 4, minor: 1, revision: 15, dev: 0 });
  assertEquals(inameError("a".repeat(15)), undefined);
  assert(inameError("a".repeat(16)));
  assert(inameError("tab\there"));
  assertThrows(() => encodeIname("x".repeat(16)), RangeError);
  assertEquals([...encodeIname("")], new Array(16).fill(0));
  const parsed = readJoolHeader(SPEC_MULTICAST, 20);
  assert(parsed.ok);
  assertEquals(parsed.header.iname, "default");
  assert(sameInstance("Default", "default"));
  assert(sameInstance("", "default"));
  assert(!sameInstance("default2", "default"));
  // strcasecmp in the C locale: A–Z only, both ways, and nothing else folds.
  assert(sameInstance("NAT64-b", "nat64-B"));
  assert(sameInstance("DEFAULT", ""));
  assert(!sameInstance("nat@4", "nat`4")); // 0x40 and 0x60 sit just outside A–Z / a–z
  assert(!sameInstance("Ä", "ä"));
  assert(!sameInstance("ab", "abc"));
});
