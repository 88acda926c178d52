/**
 * NetChannel on real sockets across network namespaces joined by veth links. The code under test runs inside
 * each namespace as a child process (tests/netns/channel_peer.ts), with the daemon's permission flags.
 *
 * Topology of the wire tests: namespace A has two links to namespace B, a0–b0 (192.0.2.0/24, 2001:db8:1::/64)
 * and a1–b1 (198.51.100.0/24, 2001:db8:2::/64). A's `out interface` is the second link; tcpdump on both of
 * A's interfaces (outgoing direction) shows that every datagram leaves through it with the configured TTL or
 * hop limit and none through the other. A unicast sentinel sent after the datagrams closes each capture: a
 * capture is FIFO, so whatever went out before the sentinel has been seen.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, ROOT } from "../helpers/daemon_process.ts";
import type { NetSocketConfig } from "../../lib/config/types.ts";
import { EXIT } from "../../lib/errors.ts";
import { Capture, Lab, type LineProcess, netnsTest, sh } from "./namespaces.ts";

/** MTU of the wire tests' links: no datagram fragments, so tcpdump sees one packet per datagram. */
const JUMBO = 9000;

const PEER = `${ROOT}tests/netns/channel_peer.ts`;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function payload(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed * 13) & 0xff);
}

/** Starts channel_peer.ts in `ns` and waits for `ready`. */
async function openPeer(lab: Lab, ns: string, config: NetSocketConfig): Promise<LineProcess> {
  const peer = lab.deno(ns, PEER, [JSON.stringify(config)], DAEMON_FLAGS);
  await peer.waitFor((l) => l.startsWith("ready ") || l.startsWith("error "));
  const error = peer.lines.find((l) => l.startsWith("error "));
  if (error) throw new Error(`channel did not open in ${ns}: ${error}`);
  return peer;
}

async function sendAll(peer: LineProcess, payloads: Uint8Array[]): Promise<void> {
  const before = peer.lines.filter((l) => l.startsWith("sent ")).length;
  for (const p of payloads) await peer.write(`send ${hex(p)}`);
  const results = await peer.waitFor((l) => l.startsWith("sent "), before + payloads.length);
  assertEquals(results.slice(before), payloads.map(() => "sent true"));
}

async function received(peer: LineProcess, count: number): Promise<string[]> {
  return (await peer.waitFor((l) => l.startsWith("recv "), count)).map((l) => l.slice(5));
}

async function stats(
  peer: LineProcess,
): Promise<{ counters: Record<string, number>; drops: Record<string, number> }> {
  const before = peer.lines.filter((l) => l.startsWith("stats ")).length;
  await peer.write("stats");
  const lines = await peer.waitFor((l) => l.startsWith("stats "), before + 1);
  return JSON.parse(lines[before].slice(6));
}

/** Sends one unicast UDP datagram from inside `ns` (bash's /dev/udp), as a capture sentinel. */
async function sentinel(ns: string, address: string, port: number): Promise<void> {
  await sh("ip", "netns", "exec", ns, "bash", "-c", `printf sentinel > /dev/udp/${address}/${port}`);
}

interface Family {
  label: string;
  family: 4 | 6;
  group: (a: string) => string;
  scoped: boolean;
  ttl: number;
  /** A's and B's addresses on link 0 and link 1. */
  addresses: { a0: string[]; b0: string[]; a1: string[]; b1: string[] };
  /** Unicast destinations in B for the sentinels, per link. */
  sentinel: { link0: string; link1: string };
  /** The config of one end, given its link-1 interface name and index and its link-1 address. */
  config: (port: number, ifname: string, ifindex: number, address: string) => NetSocketConfig;
}

const FAMILIES: Family[] = [
  {
    label: "IPv4 group 233.252.0.64, in/out interface = addresses",
    family: 4,
    group: () => "233.252.0.64",
    scoped: false,
    ttl: 3,
    addresses: {
      a0: ["192.0.2.1/24"],
      b0: ["192.0.2.2/24"],
      a1: ["198.51.100.1/24"],
      b1: ["198.51.100.2/24"],
    },
    sentinel: { link0: "192.0.2.2", link1: "198.51.100.2" },
    config: (port, _ifname, _ifindex, address) => ({
      file: "netsocket.json",
      groupAddress: "233.252.0.64",
      family: 4,
      port,
      inInterface: { text: address, address },
      outInterface: { text: address, address },
      reuseaddr: 1,
      ttl: 3,
    }),
  },
  {
    label: "IPv6 group ff08::db8:64:64, in/out interface = names",
    family: 6,
    group: () => "ff08::db8:64:64",
    scoped: false,
    ttl: 5,
    addresses: {
      a0: ["2001:db8:1::1/64"],
      b0: ["2001:db8:1::2/64"],
      a1: ["2001:db8:2::1/64"],
      b1: ["2001:db8:2::2/64"],
    },
    sentinel: { link0: "2001:db8:1::2", link1: "2001:db8:2::2" },
    config: (port, ifname, ifindex) => ({
      file: "netsocket.json",
      groupAddress: "ff08::db8:64:64",
      family: 6,
      port,
      inInterface: { text: ifname, name: ifname, index: ifindex },
      outInterface: { text: ifname, name: ifname, index: ifindex },
      reuseaddr: 1,
      ttl: 5,
    }),
  },
  {
    label: "IPv6 link-local group ff02::db8:64%if",
    family: 6,
    group: () => "ff02::db8:64",
    scoped: true,
    ttl: 2,
    addresses: {
      a0: ["2001:db8:1::1/64"],
      b0: ["2001:db8:1::2/64"],
      a1: ["2001:db8:2::1/64"],
      b1: ["2001:db8:2::2/64"],
    },
    sentinel: { link0: "2001:db8:1::2", link1: "2001:db8:2::2" },
    config: (port, ifname, ifindex) => ({
      file: "netsocket.json",
      groupAddress: "ff02::db8:64",
      family: 6,
      scope: { name: ifname, index: ifindex },
      port,
      inInterface: { text: ifname, name: ifname, index: ifindex },
      outInterface: { text: ifname, name: ifname, index: ifindex },
      reuseaddr: 1,
      ttl: 2,
    }),
  },
];

for (const [i, f] of FAMILIES.entries()) {
  netnsTest(
    `net channel across namespaces, ${f.label}: both directions byte-identical, only through out interface, TTL on the wire`,
    async () => {
      const port = 46500 + i;
      const lab = new Lab();
      try {
        const a = await lab.namespace("a");
        const b = await lab.namespace("b");
        const a0b0 = { ns: b, name: "b0", addresses: f.addresses.b0 };
        await lab.link({ ns: a, name: "a0", addresses: f.addresses.a0 }, a0b0, JUMBO);
        const a1b1 = { ns: b, name: "b1", addresses: f.addresses.b1 };
        await lab.link({ ns: a, name: "a1", addresses: f.addresses.a1 }, a1b1, JUMBO);
        const configA = f.config(port, "a1", await lab.ifindex(a, "a1"), f.addresses.a1[0].split("/")[0]);
        const configB = f.config(port, "b1", await lab.ifindex(b, "b1"), f.addresses.b1[0].split("/")[0]);
        const capture0 = await Capture.start(lab, a, "a0", `udp port ${port}`);
        const capture1 = await Capture.start(lab, a, "a1", `udp port ${port}`);
        const peerA = await openPeer(lab, a, configA);
        const peerB = await openPeer(lab, b, configB);

        // A → B: three datagrams up to the legal maximum, received byte-identical and in order.
        const toB = [payload(40, 1), payload(1000, 2), payload(2048, 3)];
        await sendAll(peerA, toB);
        assertEquals(await received(peerB, toB.length), toB.map(hex));
        // B → A.
        const toA = [payload(88, 4), payload(2000, 5)];
        await sendAll(peerB, toA);
        assertEquals(await received(peerA, toA.length), toA.map(hex));

        // On the wire, A's side: everything through a1 with the TTL / hop limit, nothing through a0.
        await sentinel(a, f.sentinel.link0, port);
        await sentinel(a, f.sentinel.link1, port);
        const through0 = await capture0.until(f.sentinel.link0);
        const through1 = await capture1.until(f.sentinel.link1);
        assertEquals(through0, []);
        assertEquals(
          through1,
          toB.map((p) => ({ ttl: f.ttl, destination: f.group(""), port, length: p.length })),
        );

        // Counters of both ends; no drops, no errors.
        const sa = await stats(peerA);
        const sb = await stats(peerB);
        assertEquals([sa.counters.NET_SENT_PKTS, sa.counters.NET_SENT_BYTES], [3, 40 + 1000 + 2048]);
        assertEquals([sb.counters.NET_RCVD_PKTS, sb.counters.NET_RCVD_BYTES], [3, 40 + 1000 + 2048]);
        assertEquals([sb.counters.NET_SENT_PKTS, sa.counters.NET_RCVD_PKTS], [2, 2]);
        for (const s of [sa, sb]) {
          assertEquals([s.counters.NET_SEND_ERRORS, s.counters.NET_RECV_ERRORS, s.drops.net_oversize], [
            0,
            0,
            0,
          ]);
        }
      } finally {
        await lab.cleanup();
      }
    },
    { tcpdump: true },
  );
}

netnsTest(
  "net channel across namespaces: oversize datagrams are counted and dropped whole, not cut",
  async () => {
    const port = 46510;
    const lab = new Lab();
    try {
      const a = await lab.namespace("a");
      const b = await lab.namespace("b");
      await lab.link({ ns: a, name: "a0", addresses: ["192.0.2.1/24"] }, {
        ns: b,
        name: "b0",
        addresses: ["192.0.2.2/24"],
      });
      const config = FAMILIES[0].config;
      const sender = await openPeer(lab, a, config(port, "a0", 0, "192.0.2.1"));
      const receiver = await openPeer(lab, b, config(port, "b0", 0, "192.0.2.2"));
      // 2049 bytes and 60000 bytes (IP-fragmented on the veth) are oversize; the 10-byte one marks the end.
      await sendAll(sender, [payload(2049, 1), payload(60000, 2), payload(10, 3)]);
      assertEquals(await received(receiver, 1), [hex(payload(10, 3))]);
      const s = await stats(receiver);
      assertEquals(s.drops.net_oversize, 2);
      assertEquals([s.counters.NET_RCVD_PKTS, s.counters.NET_RCVD_BYTES], [3, 2049 + 60000 + 10]);
      assertEquals(receiver.lines.filter((l) => l.startsWith("recv ")).length, 1);
    } finally {
      await lab.cleanup();
    }
  },
);

netnsTest(
  "net channel across namespaces: two receivers on one host with reuseaddr 1 both receive",
  async () => {
    const port = 46511;
    const lab = new Lab();
    try {
      const a = await lab.namespace("a");
      const b = await lab.namespace("b");
      await lab.link({ ns: a, name: "a0", addresses: ["192.0.2.1/24"] }, {
        ns: b,
        name: "b0",
        addresses: ["192.0.2.2/24"],
      });
      const config = FAMILIES[0].config;
      const sender = await openPeer(lab, a, config(port, "a0", 0, "192.0.2.1"));
      const first = await openPeer(lab, b, config(port, "b0", 0, "192.0.2.2"));
      const second = await openPeer(lab, b, config(port, "b0", 0, "192.0.2.2"));
      const sent = [payload(64, 1), payload(128, 2)];
      await sendAll(sender, sent);
      assertEquals(await received(first, 2), sent.map(hex));
      assertEquals(await received(second, 2), sent.map(hex));
    } finally {
      await lab.cleanup();
    }
  },
);

netnsTest(
  "net channel: reuseaddr 0 makes a second daemon on the same group:port fail with exit 9",
  async () => {
    const port = 46512;
    const lab = new Lab();
    try {
      const b = await lab.namespace("b");
      const a = await lab.namespace("a");
      await lab.link({ ns: a, name: "a0", addresses: ["192.0.2.1/24"] }, {
        ns: b,
        name: "b0",
        addresses: ["192.0.2.2/24"],
      });
      const config = { ...FAMILIES[0].config(port, "b0", 0, "192.0.2.2"), reuseaddr: 0 };
      await openPeer(lab, b, config);
      const second = lab.deno(b, PEER, [JSON.stringify(config)], DAEMON_FLAGS);
      const status = await second.status;
      assertEquals(status.code, EXIT.NET_SETUP);
      const error = second.lines.find((l) => l.startsWith("error "));
      assert(error !== undefined, second.lines.join("\n"));
      assert(
        /^error 9 netsocket\.json: cannot bind the multicast socket to 233\.252\.0\.64:46512: Address already in use/
          .test(error),
        error,
      );
    } finally {
      await lab.cleanup();
    }
  },
);
