/**
 * Authentication end to end (docs/protocol.md §10.6): two real daemons (main.ts with the kernel double) in two
 * namespaces joined by a veth pair, each with a `"key file"`. A sniffer in B's namespace hears A's frames; an
 * injector in A's namespace sends to the group (to B) — both `tests/netns/channel_peer.ts`.
 *
 * - forged (a plain datagram; a frame without trailer), wrong-key, replayed (a real frame of A, captured and
 *   sent again) and stale (right key, timestamp two minutes old) datagrams: none reaches B's kernel double,
 *   each counted by its reason in B's json view;
 * - a rolling key change in three SIGHUP steps while A's kernel keeps sending loses nothing, in upstream mode
 *   with a key and in the reliable mode with a key;
 * - a kernel batch that would not fit one packet once framed and sealed leaves as two frames of whole entries
 *   (none fragmented), arrives whole and byte for byte, and is counted (NET_BATCHES_SPLIT); without a key, on a
 *   link too small for the batch, the datagram stays the kernel's batch and its fragments are counted
 *   (NET_SENT_FRAGMENTED).
 */
import { createHmac } from "node:crypto";
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, ROOT } from "../helpers/daemon_process.ts";
import { Lab, type LineProcess, netnsTest } from "./namespaces.ts";
import { Daemon, queryStats } from "../helpers/double_daemon.ts";
import { sessionBatch } from "../helpers/kernel_messages.ts";
import { encodeData } from "../../lib/reliable/frame.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";
import { sealFrame } from "../../lib/auth/frame.ts";

const STATS_PORT = 46611;
const NEEDS = { files: [`${ROOT}lib/auth/authenticator.ts`] };
const PEER = `${ROOT}tests/netns/channel_peer.ts`;
const GROUP = "233.252.0.65";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));

function received(daemon: Daemon): number[] {
  const out: number[] = [];
  for (const container of daemon.adds()) {
    for (let at = 0; at + 40 <= container.length; at += 40) {
      out.push((container[at + 18] << 8) | container[at + 19]);
    }
  }
  return out;
}

interface Pair {
  lab: Lab;
  nsA: string;
  nsB: string;
  dirs: Record<"a" | "b", string>;
  started: Daemon[];
  start(end: "a" | "b"): Promise<Daemon>;
  peer(ns: string, address: string): Promise<LineProcess>;
}

async function pair(
  extra: Record<string, unknown>,
  keys: { first: Uint8Array; second?: Uint8Array } | undefined,
  mtu = 1500,
) {
  const lab = new Lab();
  const nsA = await lab.namespace("a");
  const nsB = await lab.namespace("b");
  await lab.link(
    { ns: nsA, name: "eth0", addresses: ["192.0.2.1/24"] },
    { ns: nsB, name: "eth0", addresses: ["192.0.2.2/24"] },
    mtu,
  );
  const dirs = {} as Record<"a" | "b", string>;
  for (const [end, address] of [["a", "192.0.2.1"], ["b", "192.0.2.2"]] as const) {
    const dir = await Deno.makeTempDir({ prefix: `joold-auth-${end}-` });
    dirs[end] = dir;
    if (keys) {
      await Deno.writeFile(`${dir}/sync.key`, keys.first, { mode: 0o600 });
      await Deno.writeFile(`${dir}/sync.key.2`, keys.second ?? keys.first, { mode: 0o600 });
    }
    await Deno.writeTextFile(
      `${dir}/netsocket.json`,
      JSON.stringify({
        "multicast address": GROUP,
        "multicast port": "6464",
        "in interface": address,
        "out interface": address,
        reuseaddr: 1,
        ttl: 1,
        ...(keys ? { "key file": `${dir}/sync.key`, "second key file": `${dir}/sync.key.2` } : {}),
        ...extra,
      }),
    );
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
  }
  const started: Daemon[] = [];
  const result: Pair = {
    lab,
    nsA,
    nsB,
    dirs,
    started,
    async start(end) {
      const daemon = new Daemon({ ns: end === "a" ? nsA : nsB, dir: dirs[end], statsPort: STATS_PORT });
      started.push(daemon);
      await daemon.ready();
      return daemon;
    },
    async peer(ns, address) {
      const process = lab.deno(ns, PEER, [
        JSON.stringify({
          file: "peer",
          groupAddress: GROUP,
          family: 4,
          port: 6464,
          inInterface: { text: address, address },
          outInterface: { text: address, address },
          reuseaddr: 1,
          ttl: 1,
        }),
      ], [...DAEMON_FLAGS]);
      await process.waitFor((line) => line.startsWith("ready"));
      return process;
    },
  };
  return result;
}

async function cleanup(p: Pair): Promise<void> {
  for (const daemon of p.started) await daemon.stop();
  await p.lab.cleanup();
  for (const dir of Object.values(p.dirs)) await Deno.remove(dir, { recursive: true });
}

/** HMAC-SHA-256 with `key`, as the test's attacker computes it. */
const macWith = (key: Uint8Array) => (data: Uint8Array) => createHmac("sha256", key).update(data).digest();

for (const mode of ["upstream", "reliable"] as const) {
  netnsTest(
    `authentication (${mode} mode): forged, wrong-key, replayed and stale datagrams never reach B's kernel, each counted`,
    async () => {
      const key = crypto.getRandomValues(new Uint8Array(32));
      const p = await pair(mode === "reliable" ? { mode } : {}, { first: key });
      try {
        const a = await p.start("a");
        const b = await p.start("b");
        const sniffer = await p.peer(p.nsB, "192.0.2.2");
        const injector = await p.peer(p.nsA, "192.0.2.1");
        const send = async (datagram: Uint8Array) => {
          const before = injector.lines.filter((l) => l.startsWith("sent ")).length;
          await injector.write(`send ${hex(datagram)}`);
          await injector.waitFor((l) => l === "sent true", before + 1);
        };

        // The real thing: A's sessions 0..9 reach B, and the sniffer captures A's frames.
        await a.inject(sessionBatch(0, 5));
        await a.inject(sessionBatch(5, 5));
        await b.until("A's 10 sessions at B", () => received(b).length === 10);
        const captured = (await sniffer.waitFor((l) => l.startsWith("recv "), 2)).map((l) =>
          unhex(l.slice(5))
        );

        // Forged: a plain datagram, and a frame without a trailer.
        await send(sessionBatch(100, 3));
        await send(encodeData(0x0bad_f00d, 1, sessionBatch(110, 3)));
        // Wrong key: a well-formed frame sealed with another key.
        const other = crypto.getRandomValues(new Uint8Array(32));
        await send(
          sealFrame(encodeData(0x0bad_f00d, 2, sessionBatch(120, 3)), 1, Date.now(), macWith(other)),
        );
        // Replayed: A's captured frames, sent again.
        for (const frame of captured) await send(frame);
        // Stale: the right key (a stolen key or a recorded frame of a forgotten sender), two minutes old.
        await send(
          sealFrame(encodeData(0x5ea1_0001, 1, sessionBatch(130, 3)), 1, Date.now() - 120_000, macWith(key)),
        );

        // A marker after them all: A's next batch arrives, so the hostile ones were handled before it.
        await a.inject(sessionBatch(10, 1));
        await b.until("A's marker session", () => received(b).includes(10));
        await sleep(200);
        assertEquals(
          received(b).sort((x, y) => x - y),
          Array.from({ length: 11 }, (_, i) => i),
          "only A's sessions",
        );
        const drops = (await queryStats(p.nsB, STATS_PORT)).drops;
        assertEquals(
          {
            missing: drops.net_auth_missing,
            bad: drops.net_auth_bad,
            replay: drops.net_auth_replay,
            stale: drops.net_auth_stale,
          },
          { missing: 2, bad: 1, replay: captured.length, stale: 1 },
          JSON.stringify(drops),
        );
        const logged = b.log.filter((l) => l.includes("net_auth_"));
        assert(logged.some((l) => l.includes("net_auth_stale") && l.includes("NTP")), logged.join("\n"));
        const statsA = await queryStats(p.nsA, STATS_PORT);
        assertEquals(statsA.wire, mode === "reliable" ? "reliable+auth" : "framed+auth");
        assertEquals(Object.values(statsA.drops).reduce((x, y) => x + y, 0), 0, "A dropped nothing");
        const authB = (await queryStats(p.nsB, STATS_PORT)).auth as { verifiedFirst: number; keys: number };
        assert(authB.verifiedFirst >= 2 && authB.keys === 2, JSON.stringify(authB));
      } finally {
        await cleanup(p);
      }
    },
    NEEDS,
  );
}

for (const mode of ["upstream", "reliable"] as const) {
  netnsTest(
    `authentication (${mode} mode): a rolling key change in three SIGHUP steps loses nothing`,
    async () => {
      const oldKey = crypto.getRandomValues(new Uint8Array(32));
      const newKey = crypto.getRandomValues(new Uint8Array(40));
      const p = await pair(mode === "reliable" ? { mode } : {}, { first: oldKey });
      try {
        const a = await p.start("a");
        const b = await p.start("b");
        let next = 0;
        let flowing = true;
        const traffic = (async () => {
          while (flowing) {
            await a.inject(sessionBatch(next, 2));
            next += 2;
            await sleep(10);
          }
        })();
        const write = (end: "a" | "b", file: string, key: Uint8Array) =>
          Deno.writeFile(`${p.dirs[end]}/${file}`, key);
        const hup = async (daemon: Daemon, step: number) => {
          const before = daemon.log.filter((l) => l.includes("keys reloaded")).length;
          daemon.kill("SIGHUP");
          await daemon.until(
            `reload ${step}`,
            () => daemon.log.filter((l) => l.includes("keys reloaded")).length === before + 1,
          );
          await sleep(300);
        };
        await sleep(300);
        // 1. Every daemon also accepts the new key.
        for (const [end, daemon] of [["a", a], ["b", b]] as const) {
          await write(end, "sync.key.2", newKey);
          await hup(daemon, 1);
        }
        // 2. Every daemon signs with the new key, still accepting the old one.
        for (const [end, daemon] of [["a", a], ["b", b]] as const) {
          await write(end, "sync.key", newKey);
          await write(end, "sync.key.2", oldKey);
          await hup(daemon, 2);
        }
        // 3. The old key is no longer accepted.
        for (const [end, daemon] of [["a", a], ["b", b]] as const) {
          await write(end, "sync.key.2", newKey);
          await hup(daemon, 3);
        }
        flowing = false;
        await traffic;
        await b.until(`all ${next} sessions of A at B`, () => new Set(received(b)).size === next);
        const drops = (await queryStats(p.nsB, STATS_PORT)).drops;
        const dropped = Object.entries(drops).filter(([, n]) => n > 0);
        assertEquals(dropped, [], "B dropped nothing");
        assert(next > 100, `traffic flowed during the change (${next} sessions)`);
        // A bad key file on reload: one error line, the keys in use stay.
        await Deno.writeFile(`${p.dirs.b}/sync.key`, new Uint8Array(31));
        b.kill("SIGHUP");
        await b.until("the reload refused", () => b.log.some((l) => l.includes("keys not reloaded")));
        assert(b.log.some((l) => l.includes("holds 31 bytes")), b.log.join("\n"));
        await a.inject(sessionBatch(next, 1));
        await b.until("B still takes A's frames", () => received(b).includes(next));
      } finally {
        await cleanup(p);
      }
    },
    NEEDS,
  );
}

for (const mode of ["upstream", "reliable"] as const) {
  netnsTest(
    `authentication (${mode} mode): a batch too large for one packet once sealed arrives whole, as two frames, none fragmented`,
    async () => {
      const key = crypto.getRandomValues(new Uint8Array(32));
      const p = await pair(mode === "reliable" ? { mode } : {}, { first: key });
      try {
        const a = await p.start("a");
        const b = await p.start("b");
        const sniffer = await p.peer(p.nsB, "192.0.2.2");
        // IPv4 at MTU 1 500: 1 472 bytes of UDP payload a packet; a sealed DATA frame adds 64 bytes, so 1 408
        // bytes of entries fit (35 format-C sessions). The kernel's 36 (1 440 bytes, 1 504 sealed) do not.
        const batch = sessionBatch(0, 36);
        await a.inject(batch);
        await b.until("A's 36 sessions at B", () => received(b).length === 36);
        assertEquals(b.adds().map((container) => container.length), [35 * 40, 40]);
        assertEquals(concatBytes(b.adds()), batch, "byte for byte, in order");
        await sleep(200);
        const frames = sniffer.lines.filter((l) => l.startsWith("recv ")).map((l) => unhex(l.slice(5)));
        assert(
          frames.length >= 2 && frames.every((f) => f.length <= 1472),
          frames.map((f) => f.length).join(),
        );
        const statsA = await queryStats(p.nsA, STATS_PORT);
        assertEquals(
          [statsA.counters.NET_BATCHES_SPLIT, statsA.counters.NET_SENT_FRAGMENTED],
          [1, 0],
          JSON.stringify(statsA.counters),
        );
        const advice = a.log.filter((l) => l.includes("does not fit one packet"));
        assertEquals(advice.length, 1, a.log.join("\n"));
        assert(advice[0].includes("eth0 (MTU 1500)"), advice[0]);
        assert(advice[0].includes("jool -i default global update ss-max-sessions-per-packet 35"), advice[0]);
        const drops = Object.entries((await queryStats(p.nsB, STATS_PORT)).drops).filter(([, n]) => n > 0);
        assertEquals(drops, [], "B dropped nothing");
      } finally {
        await cleanup(p);
      }
    },
    NEEDS,
  );
}

netnsTest(
  "no key, a link too small for the kernel's batch: the datagram stays the batch, its fragments are counted",
  async () => {
    // MTU 1 400 over IPv4: 1 372 bytes of UDP payload a packet, the batch is 1 440.
    const p = await pair({}, undefined, 1400);
    try {
      const a = await p.start("a");
      const b = await p.start("b");
      const batch = sessionBatch(0, 36);
      await a.inject(batch);
      await b.until("A's 36 sessions at B", () => received(b).length === 36);
      assertEquals(b.adds(), [batch], "one JOOLD_ADD, the batch byte for byte");
      const statsA = await queryStats(p.nsA, STATS_PORT);
      assertEquals(statsA.wire, "upstream");
      assertEquals(
        [statsA.counters.NET_BATCHES_SPLIT, statsA.counters.NET_SENT_FRAGMENTED],
        [0, 1],
        JSON.stringify(statsA.counters),
      );
      const advice = a.log.filter((l) => l.includes("does not fit one packet"));
      assertEquals(advice.length, 1, a.log.join("\n"));
      assert(advice[0].includes("IP fragments") && advice[0].includes("eth0 (MTU 1400)"), advice[0]);
      assert(advice[0].includes("ss-max-sessions-per-packet 34"), advice[0]); // (1400 − 28) / 40
    } finally {
      await cleanup(p);
    }
  },
  NEEDS,
);
