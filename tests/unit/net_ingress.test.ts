/**
 * Ingress filtering and unicast peers (docs/protocol.md §12): the `"accept from"` and `"peers"` keys, prefix
 * matching, and the packet-info control-message parser, with byte vectors.
 */
import { assertEquals } from "../helpers/assert.ts";
import { ConfigError, parseConfigText } from "../../lib/config/json_file.ts";
import { validateNetSocket } from "../../lib/config/netsocket.ts";
import { describeConfig } from "../../lib/config/load.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { fakeLookup } from "../helpers/fake_lookup.ts";
import { IngressFilter, isPrefix, parsePrefix, type Prefix, prefixContains } from "../../lib/net/ingress.ts";
import { addressBytes } from "../../lib/net/address.ts";
import { parsePacketInfo } from "../../ffi/packet_info.ts";
import { HOST_LITTLE_ENDIAN } from "../../ffi/endian.ts";
import { DROP_REASONS } from "../../lib/stats.ts";

const net = (obj: unknown) =>
  validateNetSocket(parseConfigText("netsocket.json", JSON.stringify(obj)), fakeLookup, new MemoryLogger());

async function netError(obj: unknown): Promise<string> {
  try {
    await net(obj);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(obj)}`);
}

const v4 = { "multicast address": "233.252.0.64", "multicast port": 6464, reuseaddr: 1 };
const v6 = { "multicast address": "ff08::db8:64:64", "multicast port": 6464, reuseaddr: 1 };

// ---- config ------------------------------------------------------------------------------------------------

Deno.test("accept from and peers: parsed, normalized, ports defaulted", async () => {
  const config = await net({
    ...v4,
    "accept from": ["192.0.2.0/24", "198.51.100.7", "0.0.0.0/0"],
    peers: ["192.0.2.2", "192.0.2.3:7000"],
  });
  assertEquals(config.acceptFrom?.map((p) => p.text), ["192.0.2.0/24", "198.51.100.7/32", "0.0.0.0/0"]);
  assertEquals(config.peers, [{ address: "192.0.2.2", port: 6464 }, { address: "192.0.2.3", port: 7000 }]);
  assertEquals(config.groupAddress, "233.252.0.64");
  const six = await net({
    ...v6,
    "accept from": ["2001:DB8::/32", "2001:db8::2"],
    peers: ["2001:db8:0::2", "[2001:db8::3]:7000", "[2001:db8::4]"],
  });
  assertEquals(six.acceptFrom?.map((p) => p.text), ["2001:db8::/32", "2001:db8::2/128"]);
  assertEquals(six.peers, [
    { address: "2001:db8::2", port: 6464 },
    { address: "2001:db8::3", port: 7000 },
    { address: "2001:db8::4", port: 6464 },
  ]);
});

Deno.test("peers make the multicast address optional (absent or null): unicast only", async () => {
  const absent = await net({ "multicast port": 6464, reuseaddr: 1, peers: ["2001:db8::2"] });
  assertEquals(absent.groupAddress, undefined);
  assertEquals("groupAddress" in absent, false);
  assertEquals(absent.family, 6);
  const nulled = await net({
    "multicast address": null,
    "multicast port": 6464,
    reuseaddr: 1,
    peers: ["192.0.2.2"],
  });
  assertEquals(nulled.groupAddress, undefined);
  assertEquals(nulled.family, 4);
  // "in interface" then takes the peers' family.
  const withIn = await net({ "multicast port": 6464, peers: ["192.0.2.2"], "in interface": "192.0.2.1" });
  assertEquals(withIn.inInterface?.name, "eth0");
});

Deno.test("peers without accept from warn once, naming the fix", async () => {
  const log = new MemoryLogger();
  await validateNetSocket(
    parseConfigText("netsocket.json", JSON.stringify({ ...v4, peers: ["192.0.2.2"] })),
    fakeLookup,
    log,
  );
  assertEquals(
    log.lines.filter((l) => l.includes('"peers" without "accept from"')).length,
    1,
    log.lines.join("\n"),
  );
  const quiet = new MemoryLogger();
  await validateNetSocket(
    parseConfigText(
      "netsocket.json",
      JSON.stringify({ ...v4, peers: ["192.0.2.2"], "accept from": ["192.0.2.2"] }),
    ),
    fakeLookup,
    quiet,
  );
  assertEquals(quiet.lines, []);
});

Deno.test("without the new keys the config has no new fields (upstream's shape)", async () => {
  const config = await net(v4);
  assertEquals("acceptFrom" in config, false);
  assertEquals("peers" in config, false);
  const text = describeConfig({ net: config, mod: { instance: "default" } }, undefined, []);
  assertEquals(text.includes("accept from"), false);
  assertEquals(text.includes("peers"), false);
});

Deno.test("--check prints accept from and peers", async () => {
  const config = await net({
    ...v6,
    "in interface": "eth0",
    "accept from": ["2001:db8::/64"],
    peers: ["[2001:db8::2]:7000"],
  });
  const text = describeConfig({ net: config, mod: { instance: "default" } }, undefined, []);
  assertEquals(text.includes("\naccept from: 2001:db8::/64 (through the in interface only)\n"), true, text);
  assertEquals(text.includes("\npeers: [2001:db8::2]:7000\n"), true, text);
  const unicast = await net({ "multicast port": 6464, peers: ["192.0.2.2"] });
  const text4 = describeConfig({ net: unicast, mod: { instance: "default" } }, undefined, []);
  assertEquals(text4.includes("multicast address: (none: unicast peers only)\n"), true, text4);
  assertEquals(text4.includes("\npeers: 192.0.2.2:6464\n"), true, text4);
});

Deno.test("every accept from / peers error is one line naming file, field, value and remedy", async () => {
  const cases: [unknown, string][] = [
    [
      { ...v4, "accept from": "192.0.2.0/24" },
      'netsocket.json: "accept from": must be a list, got "192.0.2.0/24"; write it in brackets, e.g. ["192.0.2.0/24"]',
    ],
    [
      { ...v4, "accept from": [] },
      'netsocket.json: "accept from": an empty list (every datagram would be refused), got []; list at least one address, e.g. ["192.0.2.0/24"], or remove the key',
    ],
    [
      { ...v4, "accept from": [24] },
      'netsocket.json: "accept from": each item must be an address or prefix in quotes, got 24; write e.g. ["192.0.2.0/24"]',
    ],
    [
      { ...v4, "accept from": ["192.0.2.0/33"] },
      'netsocket.json: "accept from": the prefix length must be a whole number from 0 to 32, got "192.0.2.0/33"; write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")',
    ],
    [
      { ...v6, "accept from": ["2001:db8::/129"] },
      'netsocket.json: "accept from": the prefix length must be a whole number from 0 to 128, got "2001:db8::/129"; write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")',
    ],
    [
      { ...v4, "accept from": ["192.0.2.0/-1"] },
      'netsocket.json: "accept from": the prefix length must be a whole number from 0 to 32, got "192.0.2.0/-1"; write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")',
    ],
    [
      { ...v4, "accept from": ["192.0.2.0/"] },
      'netsocket.json: "accept from": the prefix length must be a whole number from 0 to 32, got "192.0.2.0/"; write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")',
    ],
    [
      { ...v4, "accept from": ["sync-peer.example"] },
      'netsocket.json: "accept from": not an IPv4/IPv6 address or prefix, got "sync-peer.example"; write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")',
    ],
    [
      { ...v4, "accept from": ["192.0.2.1/24"] },
      'netsocket.json: "accept from": host bits are set after the first 24 bits, got "192.0.2.1/24"; write "192.0.2.0/24" for the network, or the bare address for one host',
    ],
    [
      { ...v6, "accept from": ["2001:db8::1/64"] },
      'netsocket.json: "accept from": host bits are set after the first 64 bits, got "2001:db8::1/64"; write "2001:db8::/64" for the network, or the bare address for one host',
    ],
    [
      { ...v6, "accept from": ["192.0.2.0/24"] },
      'netsocket.json: "accept from": an IPv4 prefix, but the sync socket is IPv6: it would never match, got "192.0.2.0/24"; list the peers\' IPv6 addresses',
    ],
    [
      { ...v4, peers: "192.0.2.2" },
      'netsocket.json: "peers": must be a list, got "192.0.2.2"; write it in brackets, e.g. ["192.0.2.2", "[2001:db8::2]:6464"]',
    ],
    [
      { ...v4, peers: [] },
      'netsocket.json: "peers": an empty list (there would be no one to send to), got []; list at least one address, e.g. ["192.0.2.2", "[2001:db8::2]:6464"], or remove the key',
    ],
    ...[
      [1, "1"],
      ["peer.example", '"peer.example"'],
      ["192.0.2.2:", '"192.0.2.2:"'],
      ["[192.0.2.2]:6464", '"[192.0.2.2]:6464"'],
      ["2001:db8::2:6464x", '"2001:db8::2:6464x"'],
      ["2001:db8::2%eth0", '"2001:db8::2%eth0"'],
    ].map(([value, shown]): [unknown, string] => [
      { ...v4, peers: [value] },
      `netsocket.json: "peers": ${
        typeof value === "number"
          ? "each peer must be an address in quotes"
          : "not an IPv4/IPv6 address with an optional port"
      }, got ${shown}; write "192.0.2.2", "192.0.2.2:6464", "2001:db8::2" or "[2001:db8::2]:6464" (port defaults to "multicast port")`,
    ]),
    [
      { ...v4, peers: ["192.0.2.2:70000"] },
      'netsocket.json: "peers": the port is not from 1 to 65535, got "192.0.2.2:70000"; write "192.0.2.2", "192.0.2.2:6464", "2001:db8::2" or "[2001:db8::2]:6464" (port defaults to "multicast port")',
    ],
    [
      { ...v4, peers: ["192.0.2.2:0"] },
      'netsocket.json: "peers": the port is not from 1 to 65535, got "192.0.2.2:0"; write "192.0.2.2", "192.0.2.2:6464", "2001:db8::2" or "[2001:db8::2]:6464" (port defaults to "multicast port")',
    ],
    [
      { ...v4, peers: ["2001:db8::2"] },
      'netsocket.json: "peers": an IPv6 peer, but the multicast group is IPv4: one socket speaks one family, got "2001:db8::2"; list IPv4 addresses only',
    ],
    [
      { "multicast port": 6464, peers: ["192.0.2.2", "2001:db8::2"] },
      'netsocket.json: "peers": an IPv6 peer, but the first peer is IPv4: one socket speaks one family, got "2001:db8::2"; list IPv4 addresses only',
    ],
    ...["233.252.0.65", "0.0.0.0", "255.255.255.255"].map((value): [unknown, string] => [
      { ...v4, peers: [value] },
      `netsocket.json: "peers": not a unicast address, got "${value}"; put a group in "multicast address"; list each peer's own unicast address here`,
    ]),
    [
      { ...v6, peers: ["ff08::db8:64:65"] },
      'netsocket.json: "peers": not a unicast address, got "ff08::db8:64:65"; put a group in "multicast address"; list each peer\'s own unicast address here',
    ],
    [
      { ...v6, peers: ["fe80::2"] },
      'netsocket.json: "peers": a link-local peer needs an interface, which peers do not take, got "fe80::2"; use the peer\'s global or unique-local address',
    ],
    [
      { ...v4, peers: ["192.0.2.2", "192.0.2.2:6464"] },
      'netsocket.json: "peers": a duplicate peer (every datagram would be sent to it twice), got "192.0.2.2:6464"; list each peer once',
    ],
    [
      { ...v6, peers: ["2001:db8::2", "[2001:db8:0::2]"] },
      'netsocket.json: "peers": a duplicate peer (every datagram would be sent to it twice), got "[2001:db8:0::2]"; list each peer once',
    ],
    [
      { "multicast address": null, "multicast port": 6464 },
      'netsocket.json: "multicast address": must be a string, got null; write it in quotes, e.g. "233.252.0.64" or "ff08::db8:64:64"',
    ],
  ];
  for (const [input, expected] of cases) {
    const message = await netError(input);
    assertEquals(message, expected, JSON.stringify(input));
    assertEquals(message.includes("\n"), false);
  }
});

// ---- prefix matching ---------------------------------------------------------------------------------------

function prefix(text: string): Prefix {
  const parsed = parsePrefix(text);
  if (!isPrefix(parsed)) throw new Error(`${text}: ${parsed.problem}`);
  return parsed;
}
const bytesOf = (text: string) => addressBytes(text)!;

Deno.test("prefix matching: IPv4 edges /0 /1 /7 /8 /9 /31 /32", () => {
  const cases: [string, string, boolean][] = [
    ["0.0.0.0/0", "203.0.113.9", true],
    ["0.0.0.0/0", "255.255.255.255", true],
    ["128.0.0.0/1", "127.255.255.255", false],
    ["128.0.0.0/1", "128.0.0.0", true],
    ["192.0.2.0/24", "192.0.2.255", true],
    ["192.0.2.0/24", "192.0.3.0", false],
    ["192.0.2.0/25", "192.0.2.127", true],
    ["192.0.2.0/25", "192.0.2.128", false],
    ["198.0.0.0/7", "199.255.0.1", true],
    ["198.0.0.0/7", "197.0.0.1", false],
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.128.0.0/9", "10.127.255.255", false],
    ["10.128.0.0/9", "10.128.0.0", true],
    ["192.0.2.2/31", "192.0.2.3", true],
    ["192.0.2.2/31", "192.0.2.1", false],
    ["192.0.2.2/32", "192.0.2.2", true],
    ["192.0.2.2", "192.0.2.2", true],
    ["192.0.2.2", "192.0.2.3", false],
  ];
  for (const [p, address, expected] of cases) {
    assertEquals(prefixContains(prefix(p), bytesOf(address)), expected, `${address} in ${p}`);
  }
});

Deno.test("prefix matching: IPv6 edges /0 /1 /63 /64 /127 /128; families never cross", () => {
  const cases: [string, string, boolean][] = [
    ["::/0", "2001:db8::1", true],
    ["::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["8000::/1", "7fff::1", false],
    ["8000::/1", "8000::", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::", false],
    ["2001:db8:0:0::/63", "2001:db8:0:1::5", true],
    ["2001:db8:0:0::/63", "2001:db8:0:2::", false],
    ["2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true],
    ["2001:db8::/64", "2001:db8:0:1::", false],
    ["2001:db8::2/127", "2001:db8::3", true],
    ["2001:db8::2/127", "2001:db8::4", false],
    ["2001:db8::2/128", "2001:db8::2", true],
    ["2001:db8::2", "2001:db8::3", false],
    // IPv4 address against an IPv6 prefix and back: no match, whatever the bits.
    ["::/0", "192.0.2.2", false],
    ["0.0.0.0/0", "::", false],
  ];
  for (const [p, address, expected] of cases) {
    assertEquals(prefixContains(prefix(p), bytesOf(address)), expected, `${address} in ${p}`);
  }
});

Deno.test("parsePrefix refuses host bits and bad lengths, suggesting the network", () => {
  assertEquals(parsePrefix("192.0.2.1/24"), {
    problem: "host bits are set after the first 24 bits",
    suggestion: "192.0.2.0/24",
  });
  assertEquals(parsePrefix("0.0.0.1/0"), {
    problem: "host bits are set after the first 0 bits",
    suggestion: "0.0.0.0/0",
  });
  assertEquals(isPrefix(parsePrefix("192.0.2.0/024")), true); // 3 digits, value 24
  assertEquals(isPrefix(parsePrefix("192.0.2.0/1000")), false);
  assertEquals(isPrefix(parsePrefix("192.0.2.0/2 4")), false);
  assertEquals(isPrefix(parsePrefix("::ffff:192.0.2.0/120")), true);
});

Deno.test("IngressFilter: source first, then the interface; IPv4-mapped sources match IPv4 prefixes", () => {
  const filter = new IngressFilter([prefix("192.0.2.0/24"), prefix("2001:db8::2")], 3);
  assertEquals(filter.check(bytesOf("192.0.2.9"), 3), undefined);
  assertEquals(filter.check(bytesOf("192.0.2.9"), 4), "net_wrong_interface");
  assertEquals(filter.check(bytesOf("192.0.2.9"), undefined), "net_wrong_interface");
  assertEquals(filter.check(bytesOf("198.51.100.9"), 3), "net_source_refused");
  assertEquals(filter.check(bytesOf("198.51.100.9"), 4), "net_source_refused");
  assertEquals(filter.check(bytesOf("::ffff:192.0.2.9"), 3), undefined);
  assertEquals(filter.check(bytesOf("::ffff:198.51.100.9"), 3), "net_source_refused");
  assertEquals(filter.check(bytesOf("2001:db8::2"), 3), undefined);
  assertEquals(filter.check(bytesOf("2001:db8::3"), 3), "net_source_refused");
  const anyInterface = new IngressFilter([prefix("192.0.2.0/24")]);
  assertEquals(anyInterface.check(bytesOf("192.0.2.9"), undefined), undefined);
  assertEquals(anyInterface.check(bytesOf("192.0.2.9"), 7), undefined);
  assertEquals(DROP_REASONS.includes("net_source_refused"), true);
  assertEquals(DROP_REASONS.includes("net_wrong_interface"), true);
});

// ---- control messages --------------------------------------------------------------------------------------

/** One cmsghdr (64-bit Linux: size_t len, int level, int type) with its data, padded to 8 bytes. */
function cmsg(level: number, type: number, data: number[]): number[] {
  const length = 16 + data.length;
  const out = new Uint8Array((length + 7) & ~7);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(length), HOST_LITTLE_ENDIAN);
  view.setInt32(8, level, HOST_LITTLE_ENDIAN);
  view.setInt32(12, type, HOST_LITTLE_ENDIAN);
  out.set(data, 16);
  return [...out];
}
const int32 = (n: number) => [...new Uint8Array(new Int32Array([n]).buffer)];
const parse = (bytes: number[], length = bytes.length) =>
  parsePacketInfo(new DataView(new Uint8Array(bytes).buffer), length);

Deno.test("parsePacketInfo: in_pktinfo and in6_pktinfo give the arrival interface", () => {
  // in_pktinfo: ifindex 5, spec_dst 192.0.2.1, addr 233.252.0.64
  const v4info = cmsg(0, 8, [...int32(5), 192, 0, 2, 1, 233, 252, 0, 64]);
  assertEquals(v4info.length, 32);
  assertEquals(parse(v4info), { interfaceIndex: 5 });
  // in6_pktinfo: addr ff08::db8:64:64, ifindex 7
  const group6 = [...addressBytes("ff08::db8:64:64")!];
  const v6info = cmsg(41, 50, [...group6, ...int32(7)]);
  assertEquals(v6info.length, 40);
  assertEquals(parse(v6info), { interfaceIndex: 7 });
  // An unknown message first (SO_TIMESTAMP-like, level SOL_SOCKET), then the packet info.
  assertEquals(parse([...cmsg(1, 29, new Array(16).fill(9)), ...v6info]), { interfaceIndex: 7 });
  // Both (a dual-stack socket): the first one wins.
  assertEquals(parse([...v4info, ...v6info]), { interfaceIndex: 5 });
});

Deno.test("parsePacketInfo: nothing, short or overrunning messages give no interface", () => {
  assertEquals(parse([]), {});
  const v4info = cmsg(0, 8, [...int32(5), 192, 0, 2, 1, 233, 252, 0, 64]);
  assertEquals(parse(v4info, 24), {}); // cut: cmsg_len 28 runs past the 24 bytes given
  assertEquals(parse(v4info.slice(0, 12)), {}); // shorter than a header
  assertEquals(parse(cmsg(0, 8, [1, 0, 0, 0])), {}); // an in_pktinfo of 4 bytes: too short to be one
  const zero = cmsg(0, 8, [...int32(5), 0, 0, 0, 0, 0, 0, 0, 0]);
  new DataView(new Uint8Array(zero).buffer).setBigUint64(0, 0n);
  const zeroLength = [...new Uint8Array(16), ...zero]; // cmsg_len 0 would loop for ever: the walk stops
  assertEquals(parse(zeroLength), {});
});
