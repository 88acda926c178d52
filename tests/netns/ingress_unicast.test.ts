/**
 * Ingress filtering and unicast peers end to end (docs/protocol.md §12): real daemons (main.ts with the kernel
 * double) in namespaces, no multicast group at all.
 *
 * - Two daemons, upstream mode, `"peers"` only, B with `"accept from"` A and `"in interface"` its sync link:
 *   A's sessions reach B's kernel; well-formed session datagrams from a source outside the list (on the sync
 *   link) and from A's own address forged on a third namespace wired to another interface of B reach nothing,
 *   each counted by reason in B's json stats.
 * - Three daemons on one bridge, unicast only: upstream mode over IPv4, and the reliable mode over IPv6 with
 *   `"accept from"` and `"in interface"` on every daemon: each kernel gets the other two's sessions.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "../helpers/daemon_process.ts";
import { Lab, netnsTest, sh } from "./namespaces.ts";
import { Daemon, queryStats, type StatsJson } from "../helpers/double_daemon.ts";
import { sessionBatch, sessionNumbers } from "../helpers/kernel_messages.ts";

const STATS_PORT = 46611;
const NEEDS = { files: [`${ROOT}lib/net/ingress.ts`] };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Session numbers in the JOOLD_ADDs a daemon's double received. */
const received = (daemon: Daemon) => sessionNumbers(daemon.adds());

const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

async function untilReceived(daemon: Daemon, sessions: number[], what: string): Promise<void> {
  await daemon.until(what, () => {
    const got = received(daemon);
    return sessions.every((n) => got.has(n));
  });
}

/**
 * Sends `count` datagrams, each a batch of 3 upstream session entries from `first` on (valid for the kernel
 * double's 4.1.13), from a plain UDP socket bound to `source` inside `ns`, to `destination`:6464.
 */
async function sendFrom(ns: string, source: string, destination: string, first: number, count: number) {
  const datagrams = range(0, count).map((i) => Array.from(sessionBatch(first + 3 * i, 3)));
  const script = `const c = Deno.listenDatagram({ transport: "udp", hostname: ${
    JSON.stringify(source)
  }, port: 0 });
for (const d of ${JSON.stringify(datagrams)}) {
  await c.send(new Uint8Array(d), { transport: "udp", hostname: ${JSON.stringify(destination)}, port: 6464 });
  await new Promise((r) => setTimeout(r, 2));
}
c.close();`;
  await sh("ip", "netns", "exec", ns, DENO, "eval", "--quiet", "--unstable-net", script);
}

async function writeConfig(dir: string, netsocket: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/netsocket.json`,
    JSON.stringify({ "multicast port": 6464, reuseaddr: 1, ...netsocket }),
  );
  await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
}

/** Waits until B's json stats satisfy `condition`; returns them. */
async function untilStats(
  daemon: Daemon,
  condition: (s: StatsJson) => boolean,
  what: string,
): Promise<StatsJson> {
  const deadline = Date.now() + 20_000;
  while (true) {
    const stats = await queryStats(daemon.ns, STATS_PORT);
    if (condition(stats)) return stats;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: ${JSON.stringify(stats.drops)} ${JSON.stringify(stats.counters)}\n${daemon.log.join("\n")}`,
      );
    }
    await sleep(100);
  }
}

/** Addresses of the wrong-source / wrong-interface case, per family. */
const FORGERY = {
  4: {
    a: "192.0.2.1",
    b: "192.0.2.2",
    stranger: "192.0.2.9",
    len: 24,
    c: "198.51.100.1",
    bOther: "198.51.100.2",
    otherLen: 24,
    host: 32,
    bIn: "192.0.2.2",
  },
  6: {
    a: "2001:db8::1",
    b: "2001:db8::2",
    stranger: "2001:db8::9",
    len: 64,
    c: "2001:db8:1::1",
    bOther: "2001:db8:1::2",
    otherLen: 64,
    host: 128,
    bIn: "eth0",
  },
} as const;

/**
 * A and B on the sync link, B with "accept from" A and "in interface" its sync link; a stranger on the sync link
 * and a forger C (A's address on another interface of B) send well-formed session datagrams.
 */
async function forgeries(family: 4 | 6): Promise<void> {
  const f = FORGERY[family];
  const lab = new Lab();
  const dirs: string[] = [];
  const started: Daemon[] = [];
  try {
    const nsA = await lab.namespace("a");
    const nsB = await lab.namespace("b");
    const nsC = await lab.namespace("c");
    // The sync link A ⇄ B; a third namespace C on another interface of B.
    await lab.link(
      { ns: nsA, name: "eth0", addresses: [`${f.a}/${f.len}`] },
      { ns: nsB, name: "eth0", addresses: [`${f.b}/${f.len}`] },
    );
    await lab.link(
      { ns: nsC, name: "eth0", addresses: [`${f.c}/${f.otherLen}`] },
      { ns: nsB, name: "eth1", addresses: [`${f.bOther}/${f.otherLen}`] },
    );
    // The stranger's address is on A's host too, deprecated so A's daemon never picks it as its source.
    await sh(
      "ip",
      "-n",
      nsA,
      "address",
      "add",
      `${f.stranger}/${f.len}`,
      "dev",
      "eth0",
      ...(family === 6 ? ["nodad", "preferred_lft", "0"] : []),
    );
    // C forges A's address. B's IPv4 reverse-path filter is off (IPv6 has none without netfilter), so what
    // stops C's datagrams is joold's check.
    await sh(
      "ip",
      "-n",
      nsC,
      "address",
      "add",
      `${f.a}/${f.host}`,
      "dev",
      "eth0",
      ...(family === 6 ? ["nodad"] : []),
    );
    for (const key of ["all", "default", "eth0", "eth1"]) {
      await sh("ip", "netns", "exec", nsB, "sysctl", "-qw", `net.ipv4.conf.${key}.rp_filter=0`);
    }
    const dirA = await Deno.makeTempDir({ prefix: "joold-ingress-a-" });
    const dirB = await Deno.makeTempDir({ prefix: "joold-ingress-b-" });
    dirs.push(dirA, dirB);
    await writeConfig(dirA, { peers: [f.b] });
    await writeConfig(dirB, { peers: [f.a], "accept from": [f.a], "in interface": f.bIn });
    const a = new Daemon({ ns: nsA, dir: dirA, statsPort: STATS_PORT });
    const b = new Daemon({ ns: nsB, dir: dirB, statsPort: STATS_PORT });
    started.push(a, b);
    await a.ready();
    await b.ready();

    // Forged traffic first: 20 datagrams (60 sessions) from the stranger on the sync link, 20 from A's
    // address through eth1.
    await sendFrom(nsA, f.stranger, f.b, 1000, 20);
    await sendFrom(nsC, f.a, f.bOther, 2000, 20);
    // Then A's real sessions, and B's own towards A (A filters nothing: the default path).
    for (let n = 0; n < 30; n += 3) await a.inject(sessionBatch(n, 3));
    for (let n = 500; n < 530; n += 3) await b.inject(sessionBatch(n, 3));
    await untilReceived(b, range(0, 30), "A's sessions at B");
    await untilReceived(a, range(500, 30), "B's sessions at A");

    const stats = await untilStats(
      b,
      (s) => s.drops.net_source_refused === 20 && s.drops.net_wrong_interface === 20,
      "B's drops by reason",
    );
    const got = received(b);
    assertEquals(range(1000, 60).filter((n) => got.has(n)), [], "no wrong-source session at B's kernel");
    assertEquals(range(2000, 60).filter((n) => got.has(n)), [], "no wrong-interface session at B's kernel");
    assertEquals(got.size, 30, "B's kernel got A's 30 sessions and nothing else");
    // The relay may coalesce A's 10 kernel batches into fewer datagrams: count what A sent.
    const statsA = await queryStats(a.ns, STATS_PORT);
    const fromA = statsA.counters.NET_SENT_PKTS;
    assertEquals(stats.counters.NET_RCVD_PKTS, fromA + 40, "B read A's datagrams and the 40 forged ones");
    assertEquals(stats.counters.KERNEL_SENT_PKTS, fromA, "only A's datagrams went to B's kernel");
    assertEquals(statsA.drops.net_source_refused, 0);
    assertEquals(statsA.counters.NET_SEND_ERRORS, 0);
  } finally {
    for (const daemon of started) await daemon.stop();
    await lab.cleanup();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
}

netnsTest(
  "unicast peers with accept from, IPv4: wrong-source and wrong-interface datagrams are counted, never reach the kernel",
  () => forgeries(4),
  NEEDS,
);

netnsTest(
  "unicast peers with accept from, IPv6: wrong-source and wrong-interface datagrams are counted, never reach the kernel",
  () => forgeries(6),
  NEEDS,
);

/** Three namespaces on one bridge (in a fourth), each with `addresses[i]` on its eth0. */
async function bridged(lab: Lab, addresses: string[][]): Promise<string[]> {
  const sw = await lab.namespace("sw");
  await sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge");
  await sh("ip", "-n", sw, "link", "set", "br0", "up");
  const namespaces: string[] = [];
  for (const [i, own] of addresses.entries()) {
    const ns = await lab.namespace(`n${i}`);
    namespaces.push(ns);
    await lab.link({ ns, name: "eth0", addresses: own }, { ns: sw, name: `p${i}`, addresses: [] });
    await sh("ip", "-n", sw, "link", "set", `p${i}`, "master", "br0");
  }
  return namespaces;
}

/** Session numbers with how many times the daemon's kernel double got each. */
function receivedCounts(daemon: Daemon): Map<number, number> {
  const out = new Map<number, number>();
  for (const container of daemon.adds()) {
    for (let at = 0; at + 40 <= container.length; at += 40) {
      const n = (container[at + 18] << 8) | container[at + 19];
      out.set(n, (out.get(n) ?? 0) + 1);
    }
  }
  return out;
}

/**
 * One daemon per address on a bridge, each listing the others as `"peers"` (plus `extra`): each kernel makes 30
 * sessions, and each must get every other daemon's sessions exactly once, and never its own. `copies`: how many
 * copies of each datagram a daemon hears (2 with a group as well), checked by the reliable mode's duplicates.
 */
async function syncOverPeers(
  mode: "upstream" | "reliable",
  addresses: string[],
  cidr: number,
  extra: (own: string) => Record<string, unknown>,
  copies: 1 | 2 = 1,
): Promise<void> {
  const lab = new Lab();
  const dirs: string[] = [];
  const started: Daemon[] = [];
  const n = addresses.length;
  try {
    const namespaces = await bridged(lab, addresses.map((a) => [`${a}/${cidr}`]));
    const daemons: Daemon[] = [];
    for (const [i, own] of addresses.entries()) {
      const dir = await Deno.makeTempDir({ prefix: `joold-unicast-${i}-` });
      dirs.push(dir);
      await writeConfig(dir, {
        peers: addresses.filter((a) => a !== own),
        ...(mode === "reliable" ? { mode, "heartbeat interval": 200 } : {}),
        ...extra(own),
      });
      const daemon = new Daemon({ ns: namespaces[i], dir, statsPort: STATS_PORT });
      started.push(daemon);
      daemons.push(daemon);
    }
    for (const daemon of daemons) await daemon.ready();
    if (mode === "reliable") {
      for (const daemon of daemons) {
        await untilStats(
          daemon,
          (s) => (s.reliable as { peers: unknown[] }).peers.length === n - 1,
          `${n - 1} live peers`,
        );
      }
    }
    // Each daemon's kernel makes 30 sessions of its own (ranges 0, 1000, 2000…).
    for (const [i, daemon] of daemons.entries()) {
      for (let s = 1000 * i; s < 1000 * i + 30; s += 3) await daemon.inject(sessionBatch(s, 3));
    }
    for (const [i, daemon] of daemons.entries()) {
      const others = range(0, n).filter((j) => j !== i).flatMap((j) => range(1000 * j, 30));
      await untilReceived(daemon, others, `the others' sessions at daemon ${i}`);
      // A moment for late copies (a duplicate would arrive right behind the first).
      await sleep(300);
      const counts = receivedCounts(daemon);
      assertEquals(range(1000 * i, 30).filter((s) => counts.has(s)), [], "a daemon never hears itself");
      assertEquals(others.filter((s) => counts.get(s) !== 1), [], "every session reaches the kernel once");
      const stats = await queryStats(daemon.ns, STATS_PORT);
      assertEquals(stats.counters.NET_SEND_ERRORS, 0);
      assertEquals(stats.drops.net_source_refused, 0);
      assertEquals(stats.drops.net_wrong_interface, 0);
      if (mode === "reliable") {
        const reliable = stats.reliable as { peers: { lost: number; duplicates: number }[] };
        assertEquals(reliable.peers.length, n - 1);
        assert(reliable.peers.every((p) => p.lost === 0), JSON.stringify(reliable));
        // Two copies of each datagram (group and unicast): the second is discarded by sequence, and counted.
        assert(
          reliable.peers.every((p) => copies === 2 ? p.duplicates > 0 : p.duplicates === 0),
          JSON.stringify(reliable),
        );
      }
    }
  } finally {
    for (const daemon of started) await daemon.stop();
    await lab.cleanup();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
}

netnsTest(
  "three daemons sync over unicast only (no multicast address), upstream mode, IPv4",
  () => syncOverPeers("upstream", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], 24, () => ({})),
  NEEDS,
);

netnsTest(
  "two daemons sync over unicast only, reliable mode, IPv4",
  () => syncOverPeers("reliable", ["192.0.2.1", "192.0.2.2"], 24, () => ({})),
  NEEDS,
);

netnsTest(
  "three daemons sync over unicast only, reliable mode, IPv6, each accepting only the others through eth0",
  () =>
    syncOverPeers(
      "reliable",
      ["2001:db8::1", "2001:db8::2", "2001:db8::3"],
      64,
      (own) => ({
        "in interface": "eth0",
        "accept from": ["2001:db8::1", "2001:db8::2", "2001:db8::3"].filter((a) => a !== own),
      }),
    ),
  NEEDS,
);

netnsTest(
  "reliable mode with the group and peers both: every datagram arrives twice, every session reaches the kernel once",
  () =>
    syncOverPeers("reliable", ["192.0.2.1", "192.0.2.2"], 24, (own) => ({
      "multicast address": "233.252.0.64",
      "in interface": own,
      "out interface": own,
    }), 2),
  NEEDS,
);

netnsTest(
  "a multicast group with accept from (the group-bound socket), and a sender with group plus an unreachable peer",
  async () => {
    const lab = new Lab();
    const dirs: string[] = [];
    const started: Daemon[] = [];
    try {
      const nsA = await lab.namespace("a");
      const nsB = await lab.namespace("b");
      await lab.link(
        { ns: nsA, name: "eth0", addresses: ["192.0.2.1/24", "192.0.2.9/24"] },
        { ns: nsB, name: "eth0", addresses: ["192.0.2.2/24"] },
      );
      // The forger's plain socket sends to the group without IP_MULTICAST_IF: give it a route.
      await sh("ip", "-n", nsA, "route", "add", "224.0.0.0/4", "dev", "eth0");
      const dirA = await Deno.makeTempDir({ prefix: "joold-ingress-a-" });
      const dirB = await Deno.makeTempDir({ prefix: "joold-ingress-b-" });
      dirs.push(dirA, dirB);
      const group = { "multicast address": "233.252.0.64", ttl: 1 };
      // A: the group and a peer it has no route to (198.51.100.0/24 is nowhere in A's namespace).
      await writeConfig(dirA, { ...group, "out interface": "192.0.2.1", peers: ["198.51.100.7"] });
      await writeConfig(dirB, { ...group, "in interface": "192.0.2.2", "accept from": ["192.0.2.0/29"] });
      const a = new Daemon({ ns: nsA, dir: dirA, statsPort: STATS_PORT });
      const b = new Daemon({ ns: nsB, dir: dirB, statsPort: STATS_PORT });
      started.push(a, b);
      await a.ready();
      await b.ready();

      await sendFrom(nsA, "192.0.2.9", "233.252.0.64", 1000, 15);
      for (let n = 0; n < 30; n += 3) await a.inject(sessionBatch(n, 3));
      await untilReceived(b, range(0, 30), "A's sessions at B through the group");
      const stats = await untilStats(b, (s) => s.drops.net_source_refused === 15, "B's refusals");
      const got = received(b);
      assertEquals(range(1000, 45).filter((n) => got.has(n)), [], "no wrong-source session at B's kernel");
      assertEquals(got.size, 30);
      assertEquals(stats.drops.net_wrong_interface, 0);

      const statsA = await queryStats(a.ns, STATS_PORT);
      const datagrams = statsA.counters.NET_SENT_PKTS;
      assert(datagrams > 0);
      assertEquals(stats.counters.KERNEL_SENT_PKTS, datagrams, "every datagram A sent to the group");
      assertEquals(
        statsA.counters.NET_SEND_ERRORS,
        datagrams,
        "each one failed towards the unreachable peer",
      );
      const lines = a.log.filter((l) => l.includes("could not send a datagram"));
      assert(
        lines.length >= 1 && lines.length <= 3,
        `rate-limited to one line a second: ${lines.join("\n")}`,
      );
      assert(lines[0].includes("(to 198.51.100.7:6464)"), lines[0]);
    } finally {
      for (const daemon of started) await daemon.stop();
      await lab.cleanup();
      for (const dir of dirs) await Deno.remove(dir, { recursive: true });
    }
  },
  NEEDS,
);

netnsTest("--check accepts the README's unicast example and prints peers and accept from", async () => {
  const lab = new Lab();
  const dir = await Deno.makeTempDir({ prefix: "joold-check-unicast-" });
  try {
    const ns = await lab.namespace("chk");
    const other = await lab.namespace("peer");
    await lab.link(
      { ns, name: "eth0", addresses: ["192.0.2.1/24"] },
      { ns: other, name: "eth0", addresses: ["192.0.2.2/24"] },
    );
    const readme = await Deno.readTextFile(`${ROOT}README.md`);
    const section = readme.slice(readme.indexOf("### Unicast peers and source filtering"));
    const example = section.slice(
      section.indexOf("```json\n") + 8,
      section.indexOf("```\n", section.indexOf("```json")),
    );
    await Deno.writeTextFile(`${dir}/netsocket.json`, example);
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    const out = await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        DENO,
        "run",
        "--quiet",
        ...DAEMON_FLAGS,
        `${ROOT}main.ts`,
        "--check",
        "netsocket.json",
        "modsocket.json",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assert(stdout.includes("multicast address: (none: unicast peers only)\n"), stdout);
    assert(
      stdout.includes("\naccept from: 192.0.2.2/32, 192.0.2.3/32 (through the in interface only)\n"),
      stdout,
    );
    assert(stdout.includes("\npeers: 192.0.2.2:6464, 192.0.2.3:6465\n"), stdout);
  } finally {
    await lab.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}, NEEDS);
