/**
 * The pool4 listing: POOL4_FOREACH requests and replies as byte vectors (Jool 4.1.9–4.1.15, docs/protocol.md
 * §11.1), and the paged read over the double.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { decodePool4Reply, encodePool4Foreach, type Pool4Entry } from "../../lib/jool/pool4.ts";
import type { RequestContext } from "../../lib/jool/messages.ts";
import { Pool4ReadError, readPool4 } from "../../lib/kernel/pool4_read.ts";
import { joolErrorReply, parsePool4Spec, Pool4Double, replyTo } from "../helpers/pool4_double.ts";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

const context: RequestContext = {
  familyId: 0x22,
  pid: 0x1234,
  seq: 7,
  version: { major: 4, minor: 1, revision: 13, dev: 0 },
  instance: "default",
};

const HEADERS_REQUEST = "22 00 01 00 07 00 00 00 34 12 00 00" + // type, NLM_F_REQUEST, seq 7, pid
  "12 01 00 00" + // genl: cmd 18 (POOL4_FOREACH), version 1
  "6a 6f 6f 6c 04 01 0d 00 02 00 00 00 64 65 66 61 75 6c 74 00 00 00 00 00 00 00 00 00"; // jool 4.1.13 NAT64 "default"

/** ICMP, mark 0, 192.0.2.0/24, identifiers 0–65535, iterations 1024: the attributes inside its nest. */
const ENTRY_ATTRS = "08 00 01 00 00 00 00 00" + // MARK 0
  "08 00 02 00 00 04 00 00" + // ITERATIONS 1024 (host order)
  "05 00 03 00 00 00 00 00" + // FLAGS 0
  "05 00 04 00 02 00 00 00" + // PROTO 2 (ICMP)
  "14 00 05 80" + // PREFIX, nested
  "08 00 01 00 c0 00 02 00" + //   ADDR 192.0.2.0
  "05 00 02 00 18 00 00 00" + //   LEN 24
  "06 00 06 00 00 00 00 00" + // PORT_MIN 0
  "06 00 07 00 ff ff 00 00"; // PORT_MAX 65535

const ENTRY: Pool4Entry = {
  mark: 0,
  iterations: 1024,
  flags: 0,
  proto: 2,
  address: 0xc0000200,
  prefixLength: 24,
  portMin: 0,
  portMax: 65535,
};

Deno.test("POOL4_FOREACH: the first request names the protocol", () => {
  assertEquals(
    encodePool4Foreach(context, 2),
    hex("38 00 00 00" + HEADERS_REQUEST + "05 00 0b 00 02 00 00 00"), // PROTO (11) = 2
  );
});

Deno.test("POOL4_FOREACH: a continuation carries the last entry as a nested OFFSET", () => {
  assertEquals(
    encodePool4Foreach(context, 2, ENTRY),
    hex("78 00 00 00" + HEADERS_REQUEST + "48 00 08 80" + ENTRY_ATTRS), // OFFSET (8) | NLA_F_NESTED
  );
});

/** A kernel reply to the request above: seq 7, genl cmd 0 version 2, the request's Jool header, `flags`. */
function reply(flags: string, attrs: string): Uint8Array {
  const body = "00 02 00 00" + "6a 6f 6f 6c 04 01 0d 00 02 " + flags +
    " 00 00 64 65 66 61 75 6c 74 00 00 00 00 00 00 00 00 00" + attrs;
  const length = 16 + hex(body).length;
  return hex(
    `${(length & 0xff).toString(16).padStart(2, "0")} 00 00 00 22 00 00 00 07 00 00 00 34 12 00 00` + body,
  );
}

Deno.test("POOL4_FOREACH reply: nested entries (flags as a ≥5.2 kernel sets them), flag M", () => {
  assertEquals(decodePool4Reply(reply("00", "48 00 01 80" + ENTRY_ATTRS), 0x22, 7), {
    kind: "entries",
    entries: [ENTRY],
    more: false,
  });
  // Without NLA_F_NESTED (older kernels), and with flag M: ask again.
  const plain = ENTRY_ATTRS.replace("14 00 05 80", "14 00 05 00");
  assertEquals(decodePool4Reply(reply("08", "48 00 01 00" + plain + "48 00 01 00" + plain), 0x22, 7), {
    kind: "entries",
    entries: [ENTRY, ENTRY],
    more: true,
  });
  // An empty table: no attribute at all.
  assertEquals(decodePool4Reply(reply("00", ""), 0x22, 7), { kind: "entries", entries: [], more: false });
});

Deno.test("POOL4_FOREACH reply: errors, other sequence numbers, malformed entries", () => {
  const request = encodePool4Foreach(context, 0);
  assertEquals(decodePool4Reply(joolErrorReply(request, 0x22, 3, "no instance"), 0x22, 7), {
    kind: "error",
    code: 3,
    message: "no instance",
  });
  assertEquals(decodePool4Reply(joolErrorReply(request, 0x22, 3, "x"), 0x22, 8), { kind: "unrelated" });
  // NLMSG_ERROR from genetlink (e.g. EOPNOTSUPP), seq 7.
  const nlerr = hex("24 00 00 00 02 00 00 00 07 00 00 00 34 12 00 00 a1 ff ff ff" + "00".repeat(16));
  assertEquals(decodePool4Reply(nlerr, 0x22, 7), { kind: "error", code: 95, message: "" });
  // An entry without its PORT_MAX.
  const short = ENTRY_ATTRS.slice(0, ENTRY_ATTRS.lastIndexOf("06 00 07 00"));
  const missing = decodePool4Reply(reply("00", "40 00 01 80" + short), 0x22, 7);
  assertEquals(missing, { kind: "invalid", detail: "entry 0: no maximum port" });
  // A prefix longer than 32.
  const long = ENTRY_ATTRS.replace("05 00 02 00 18", "05 00 02 00 21");
  assertEquals(decodePool4Reply(reply("00", "48 00 01 80" + long), 0x22, 7), {
    kind: "invalid",
    detail: "entry 0: prefix length 33; expected 0–32",
  });
  // A root attribute that is not an entry.
  assertEquals(decodePool4Reply(reply("00", "05 00 0b 00 02 00 00 00"), 0x22, 7), {
    kind: "invalid",
    detail: "root attribute 11 in a pool4 listing",
  });
  // A reversed range is normalised (Jool swaps them when adding).
  const reversed = ENTRY_ATTRS.replace("06 00 06 00 00 00", "06 00 06 00 10 00").replace(
    "06 00 07 00 ff ff",
    "06 00 07 00 08 00",
  );
  const swapped = decodePool4Reply(reply("00", "48 00 01 80" + reversed), 0x22, 7);
  assert(swapped.kind === "entries");
  assertEquals([swapped.entries[0].portMin, swapped.entries[0].portMax], [8, 16]);
});

function counter(): () => number {
  let seq = 100;
  return () => seq++;
}

Deno.test("readPool4: pages through every protocol with offsets (2 entries per reply)", async () => {
  const table = parsePool4Spec(
    "tcp:192.0.2.1/32:1024-2047,tcp:192.0.2.2/32:1024-2047:7,tcp:192.0.2.3/32:3000-3999," +
      "tcp:192.0.2.4/32:5000-5999:3,tcp:192.0.2.5/32:6000-6999,udp:198.51.100.0/30:1-65535,icmp:192.0.2.1/32:0-65535",
  );
  const double = new Pool4Double(table, { pageSize: 2 });
  const entries = await readPool4(double, { instance: "default", nextSeq: counter() });
  // TCP sorted by mark as the kernel walks them (0, 0, 0, 3, 7), then UDP, then ICMP.
  assertEquals(
    entries.map((e) => `${e.proto}/${e.mark}/${e.address & 0xff}`),
    ["0/0/1", "0/0/3", "0/0/5", "0/3/4", "0/7/2", "1/0/0", "2/0/1"],
  );
  // TCP: 3 requests (PROTO, OFFSET, OFFSET), UDP 1, ICMP 1.
  assertEquals(double.requests.length, 5);
});

Deno.test("readPool4: EAGAIN after a change between pages restarts that protocol's listing", async () => {
  const table = parsePool4Spec("tcp:192.0.2.1/32:1-9,tcp:192.0.2.2/32:1-9,tcp:192.0.2.3/32:1-9");
  const double = new Pool4Double(table, { pageSize: 2 });
  let changed = false;
  double.beforeAnswer = (request) => {
    // Before the first continuation: remove the entry it resumes after.
    if (!changed && request.length > 56) {
      changed = true;
      double.table = parsePool4Spec("tcp:192.0.2.1/32:1-9,tcp:192.0.2.3/32:1-9");
    }
  };
  const entries = await readPool4(double, { instance: "default", nextSeq: counter() });
  assertEquals(entries.map((e) => e.address & 0xff), [1, 3]);
});

Deno.test("readPool4: a refusal is a Pool4ReadError with the kernel's errno; silence times out", async () => {
  const refused = new Pool4Double([], { failWith: 1 });
  const error = await readPool4(refused, { instance: "default", nextSeq: counter() }).then(
    () => undefined,
    (e) => e,
  );
  assert(error instanceof Pool4ReadError);
  assertEquals(error.code, 1);
  assertEquals(error.message, "the kernel refused POOL4_FOREACH with errno 1 (failing on purpose)");

  const silent = new Pool4Double([]);
  silent.send = () => {}; // never answers
  const timeout = await readPool4(silent, { instance: "default", nextSeq: counter(), replyTimeoutMs: 10 })
    .then(
      () => undefined,
      (e) => e,
    );
  assert(timeout instanceof Pool4ReadError);
  assertEquals(timeout.message, "no reply to POOL4_FOREACH within 10 ms");
});

Deno.test("readPool4: replies to older requests are skipped", async () => {
  const double = new Pool4Double(parsePool4Spec("udp:192.0.2.9/32:10-20"));
  const receive = double.receive.bind(double);
  let stale: Uint8Array | undefined;
  double.receive = (timeoutMs) => {
    if (stale === undefined) {
      // Before the real reply: an empty listing answering another sequence number (an earlier request's).
      stale = replyTo(double.requests[0], double.familyId, 0, new Uint8Array(0));
      new DataView(stale.buffer).setUint32(8, 1, true);
      return Promise.resolve(stale);
    }
    return receive(timeoutMs);
  };
  const entries = await readPool4(double, { instance: "default", nextSeq: counter() });
  assertEquals(entries.map((e) => [e.proto, e.portMin, e.portMax]), [[1, 10, 20]]);
});
