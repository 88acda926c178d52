/**
 * End to end: the real daemon (main.ts) on both ends of a veth link, each in its own namespace, each with the
 * kernel double (`--kernel-double=4.1.13`: netlink frames on stdin/stdout, a frame = u32 BE length + one
 * netlink datagram).
 *
 * - A batch injected as a kernel multicast at A's double arrives at B's double inside a JOOLD_ADD whose
 *   session container is byte-identical to the multicast's (and vice versa), for IPv4, IPv6 and ff02 groups.
 * - Malformed datagrams sent to B (random bytes, a truncated entry, a foreign format, oversize, empty) are
 *   dropped and counted (stats `json` query inside the namespace) and never reach B's double.
 */
import { assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, ROOT } from "../helpers/daemon_process.ts";
import { Lab, type LineProcess, netnsTest } from "./namespaces.ts";
import { Daemon, JOOLD_ACK, queryStats } from "../helpers/double_daemon.ts";
import { sessionEntry } from "../helpers/kernel_messages.ts";
import { concatBytes as concat } from "../../lib/jool/netlink.ts";

const STATS_PORT = 46600;
/** The daemon runs only once the kernel double exists. */
const NEEDS = { files: [`${ROOT}tests/helpers/kernel_double.ts`, `${ROOT}lib/kernel/channel.ts`] };

// ---- netlink frames (docs/protocol.md §1.3, §2.1, §5.1), built independently of lib/ ---------------------------------

interface Setup {
  label: string;
  addresses: { a: string; b: string };
  netsocket: (end: "a" | "b") => Record<string, unknown>;
}

const SETUPS: Setup[] = [
  {
    label: "IPv4 233.252.0.64",
    addresses: { a: "192.0.2.1/24", b: "192.0.2.2/24" },
    netsocket: (end) => ({
      "multicast address": "233.252.0.64",
      "in interface": end === "a" ? "192.0.2.1" : "192.0.2.2",
      "out interface": end === "a" ? "192.0.2.1" : "192.0.2.2",
    }),
  },
  {
    label: "IPv6 ff08::db8:64:64",
    addresses: { a: "2001:db8::1/64", b: "2001:db8::2/64" },
    netsocket: () => ({
      "multicast address": "ff08::db8:64:64",
      "in interface": "eth0",
      "out interface": "eth0",
    }),
  },
  {
    label: "IPv6 ff02::db8:64%eth0",
    addresses: { a: "2001:db8::1/64", b: "2001:db8::2/64" },
    netsocket: () => ({
      "multicast address": "ff02::db8:64%eth0",
      "in interface": "eth0",
      "out interface": "eth0",
    }),
  },
];

/** Two namespaces joined by a veth named eth0 at both ends, a daemon in each. */
async function twoDaemons(
  lab: Lab,
  setup: Setup,
  dirs: string[],
  ends: ("a" | "b")[],
): Promise<{ daemons: Map<"a" | "b", Daemon>; nsA: string; nsB: string }> {
  const a = await lab.namespace("a");
  const b = await lab.namespace("b");
  await lab.link({ ns: a, name: "eth0", addresses: [setup.addresses.a] }, {
    ns: b,
    name: "eth0",
    addresses: [setup.addresses.b],
  });
  const daemons = new Map<"a" | "b", Daemon>();
  for (const end of ends) {
    const dir = await Deno.makeTempDir({ prefix: `joold-e2e-${end}-` });
    dirs.push(dir);
    const net = { "multicast port": "6464", reuseaddr: 1, ttl: 1, ...setup.netsocket(end) };
    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify(net, null, "\t"));
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    const daemon = new Daemon({ ns: end === "a" ? a : b, dir, statsPort: STATS_PORT });
    daemons.set(end, daemon);
  }
  for (const d of daemons.values()) await d.ready();
  return { daemons, nsA: a, nsB: b };
}

async function cleanup(lab: Lab, daemons: Daemon[], dirs: string[]): Promise<void> {
  for (const d of daemons) await d.stop();
  await lab.cleanup();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}

for (const setup of SETUPS) {
  netnsTest(
    `daemon ⇄ daemon, ${setup.label}: a kernel batch at A arrives byte-identical at B's kernel, and back`,
    async () => {
      const lab = new Lab();
      const dirs: string[] = [];
      const started: Daemon[] = [];
      try {
        const { daemons } = await twoDaemons(lab, setup, dirs, ["a", "b"]);
        const a = daemons.get("a")!, b = daemons.get("b")!;
        started.push(a, b);
        const toB = concat(Array.from({ length: 36 }, (_, i) => sessionEntry(i)));
        await a.inject(toB);
        await b.until("JOOLD_ADD at B", () => b.adds().length >= 1);
        assertEquals(b.adds(), [toB]);
        await a.until("JOOLD_ACK at A", () => a.messages.some((m) => m.cmd === JOOLD_ACK));

        const toA = concat([sessionEntry(100), sessionEntry(101)]);
        await b.inject(toA);
        await a.until("JOOLD_ADD at A", () => a.adds().length >= 1);
        assertEquals(a.adds(), [toA]);
        assertEquals(b.adds(), [toB]); // its own batch did not come back

        const sa = await queryStats(a.ns, STATS_PORT);
        assertEquals([sa.counters.NET_SENT_PKTS, sa.counters.NET_SENT_BYTES], [1, toB.length]);
        assertEquals([sa.counters.KERNEL_SENT_PKTS, sa.counters.NET_RCVD_BYTES], [1, toA.length]);
      } finally {
        await cleanup(lab, started, dirs);
      }
    },
    NEEDS,
  );
}

netnsTest("daemon: malformed datagrams are dropped, counted, and never reach the kernel", async () => {
  const lab = new Lab();
  const dirs: string[] = [];
  const started: Daemon[] = [];
  try {
    const { daemons, nsA } = await twoDaemons(lab, SETUPS[0], dirs, ["b"]);
    const b = daemons.get("b")!;
    started.push(b);
    // B learns its kernel's traffic first (one batch of its own, forwarded out), like a running daemon.
    await b.inject(sessionEntry(1));
    await b.until("B's first batch sent", () => b.messages.some((m) => m.cmd === JOOLD_ACK));

    // A plain sender in A: the same group and port, through the net channel test helper.
    const sender: LineProcess = lab.deno(nsA, `${ROOT}tests/netns/channel_peer.ts`, [JSON.stringify({
      file: "sender",
      groupAddress: "233.252.0.64",
      family: 4,
      port: 6464,
      inInterface: { text: "192.0.2.1", address: "192.0.2.1" },
      outInterface: { text: "192.0.2.1", address: "192.0.2.1" },
      reuseaddr: 1,
      ttl: 1,
    })], DAEMON_FLAGS);
    await sender.waitFor((l) => l.startsWith("ready "));
    let seed = 0x2545f491;
    const random = Uint8Array.from({ length: 77 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    const formatA = new Uint8Array(140);
    new DataView(formatA.buffer).setUint16(0, 140, true);
    new DataView(formatA.buffer).setUint16(2, 0x8001, true);
    const badProto = sessionEntry(9);
    badProto[39] = (badProto[39] & ~0x60) | (3 << 5); // packed proto/state/timer: protocol 3 (OTHER)
    const malformed: [string, Uint8Array][] = [
      ["random bytes", random],
      ["truncated entry", concat([sessionEntry(2), sessionEntry(3).subarray(0, 20)])],
      ["foreign format (A, 140-byte entries)", formatA],
      ["oversize", concat(Array.from({ length: 60 }, (_, i) => sessionEntry(i)))],
      ["empty", new Uint8Array(0)],
      ["bad field (protocol 3)", badProto],
    ];
    const valid = concat([sessionEntry(7), sessionEntry(8)]);
    const hex = (p: Uint8Array) => Array.from(p, (x) => x.toString(16).padStart(2, "0")).join("");
    for (const [, p] of malformed) await sender.write(`send ${hex(p)}`);
    await sender.write(`send ${hex(valid)}`);
    await sender.waitFor((l) => l === "sent true", malformed.length + 1);
    // The valid one, sent last, is the only one that reaches the kernel.
    await b.until("the valid datagram's JOOLD_ADD", () => b.adds().length >= 1);
    assertEquals(b.adds(), [valid]);

    const s = await queryStats(b.ns, STATS_PORT);
    assertEquals(s.counters.NET_RCVD_PKTS, malformed.length + 1);
    assertEquals(s.counters.KERNEL_SENT_PKTS, 1);
    const netDrops = Object.entries(s.drops).filter(([k]) => k.startsWith("net_"));
    assertEquals(netDrops.reduce((n, [, v]) => n + v, 0), malformed.length, JSON.stringify(s.drops));
    assertEquals(s.drops.net_oversize, 1);
    assertEquals(s.drops.net_empty, 1);
    assertEquals(s.drops.net_truncated_entry, 2, "random bytes and the truncated entry");
    assertEquals(s.drops.net_foreign_format, 1);
    assertEquals(s.drops.net_bad_field, 1);
  } finally {
    await cleanup(lab, started, dirs);
  }
}, NEEDS);
