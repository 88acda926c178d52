/**
 * The reliable mode end to end: two real daemons (main.ts with the kernel double) in two namespaces,
 * `"mode": "reliable"` on both, the sync link between them impaired both ways: 5 % loss, 1 % duplication, 10 %
 * of datagrams delayed 4 ms (reordered). The kernel here has no `sch_netem` (`tc qdisc … netem`: "Specified
 * qdisc kind is unknown"), so two forwarders in namespaces between the daemons do it
 * (`tests/netns/lossy_forwarder.ts`): A ⇄ fa ⇄ fb ⇄ B.
 *
 * - B starts after A holds 300 sessions: it converges with no command (replay), its json view and track file
 *   say in sync;
 * - B is restarted while A's kernel keeps sending: the new B gets every session A ever sent (replay + live),
 *   and A gets B's own sessions;
 * - A → B is cut for 3 s while A sends more datagrams than its resend buffer keeps: B finds the gap
 *   unrecoverable, resyncs, and from the end of the cut its track file says "0" only once B's kernel holds
 *   every session A sent;
 * - every gap is counted: gaps = reordered + recovered + lost + still missing, and there were gaps.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { ROOT } from "../helpers/daemon_process.ts";
import { DAEMON_FLAGS } from "../helpers/daemon_process.ts";
import { Lab, type LineProcess, netnsTest } from "./namespaces.ts";
import { Daemon, queryStats, type StatsJson } from "../helpers/double_daemon.ts";
import { sessionBatch, sessionNumbers } from "../helpers/kernel_messages.ts";

const STATS_PORT = 46601;
const NEEDS = { files: [`${ROOT}lib/reliable/sync.ts`] };
/** The link's impairment (each direction). */
const IMPAIRMENT = { loss: 0.05, duplicate: 0.01, reorder: 0.1, reorderMs: 4 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Session numbers in the JOOLD_ADDs a daemon's double received. */
const received = (daemon: Daemon) => sessionNumbers(daemon.adds());

function missing(daemon: Daemon, first: number, count: number): number[] {
  const got = received(daemon);
  return Array.from({ length: count }, (_, i) => first + i).filter((n) => !got.has(n));
}

async function injectRange(daemon: Daemon, first: number, count: number, perBatch: number, gapMs: number) {
  for (let n = first; n < first + count; n += perBatch) {
    await daemon.inject(sessionBatch(n, Math.min(perBatch, first + count - n)));
    if (gapMs > 0) await sleep(gapMs);
  }
}

interface PeerJson {
  id: string;
  inSync: boolean;
  missing: number;
  gaps: number;
  reordered: number;
  recovered: number;
  lost: number;
  duplicates: number;
  resyncRequests: number;
  replaysCompleted: number;
}

function reliableOf(stats: StatsJson): { inSync: boolean; peers: PeerJson[] } {
  return stats.reliable as { inSync: boolean; peers: PeerJson[] };
}

async function track(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "(absent)";
    throw error;
  }
}

/** Waits until the track file says `value` (it is written at the engine's next tick after the json view). */
async function untilTrack(file: string, value: string, daemon: Daemon): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (await track(file) !== value) {
    if (Date.now() > deadline) {
      const stats = await queryStats(daemon.ns, STATS_PORT);
      throw new Error(
        `${file} is ${await track(file)}, not ${value}: ${JSON.stringify(stats.reliable)}\n${
          daemon.log.join("\n")
        }`,
      );
    }
    await sleep(20);
  }
}

/** Waits until the daemon's json view says in sync with exactly `peers` live peers. */
async function untilInSync(daemon: Daemon, peers: number): Promise<StatsJson> {
  const deadline = Date.now() + 30_000;
  while (true) {
    const stats = await queryStats(daemon.ns, STATS_PORT);
    const reliable = reliableOf(stats);
    if (reliable.inSync && reliable.peers.length === peers) return stats;
    if (Date.now() > deadline) {
      throw new Error(`not in sync after 30 s: ${JSON.stringify(reliable)}\n${daemon.log.join("\n")}`);
    }
    await sleep(200);
  }
}

netnsTest(
  "reliable mode over a lossy link: late and restarted receivers converge, in sync only when the tables match",
  async () => {
    const lab = new Lab();
    const dirs: string[] = [];
    const started: Daemon[] = [];
    try {
      const nsA = await lab.namespace("a");
      const nsFa = await lab.namespace("fa");
      const nsFb = await lab.namespace("fb");
      const nsB = await lab.namespace("b");
      const end = (ns: string, name: string, address: string) => ({ ns, name, addresses: [`${address}/24`] });
      await lab.link(end(nsA, "eth0", "192.0.2.1"), end(nsFa, "eth0", "192.0.2.2"));
      await lab.link(end(nsFa, "eth1", "198.51.100.1"), end(nsFb, "eth1", "198.51.100.2"));
      await lab.link(end(nsB, "eth0", "203.0.113.1"), end(nsFb, "eth0", "203.0.113.2"));
      const forwarder = async (ns: string, side: string, self: string, other: string, seed: number) => {
        const net = {
          file: "forwarder",
          groupAddress: "233.252.0.64",
          family: 4,
          port: 6464,
          inInterface: { text: side, address: side },
          outInterface: { text: side, address: side },
          reuseaddr: 1,
          ttl: 1,
        };
        const options = {
          net,
          bind: { hostname: self, port: 7000 },
          peer: { hostname: other, port: 7000 },
          ...IMPAIRMENT,
          seed,
        };
        const process = lab.deno(ns, `${ROOT}tests/netns/lossy_forwarder.ts`, [JSON.stringify(options)], [
          ...DAEMON_FLAGS,
        ]);
        await process.waitFor((line) => line === "ready");
        return process;
      };
      const fa: LineProcess = await forwarder(nsFa, "192.0.2.2", "198.51.100.1", "198.51.100.2", 0x5eed);
      await forwarder(nsFb, "203.0.113.2", "198.51.100.2", "198.51.100.1", 0xbeef);
      const dirOf: Record<string, string> = {};
      for (const [end, address] of [["a", "192.0.2.1"], ["b", "203.0.113.1"]]) {
        const dir = await Deno.makeTempDir({ prefix: `joold-reliable-${end}-` });
        dirs.push(dir);
        dirOf[end] = dir;
        await Deno.writeTextFile(
          `${dir}/netsocket.json`,
          JSON.stringify({
            "multicast address": "233.252.0.64",
            "multicast port": "6464",
            "in interface": address,
            "out interface": address,
            reuseaddr: 1,
            ttl: 1,
            mode: "reliable",
            "track file": `${dir}/in-sync`,
            "track weight": -30,
            "resend buffer": 64,
            "replay rate": 20,
          }),
        );
        await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
      }
      const start = async (end: "a" | "b") => {
        const daemon = new Daemon({ ns: end === "a" ? nsA : nsB, dir: dirOf[end], statsPort: STATS_PORT });
        started.push(daemon);
        await daemon.ready();
        return daemon;
      };

      // 1. A alone holds 300 sessions; B starts late.
      const a = await start("a");
      await injectRange(a, 0, 300, 3, 2);
      assertEquals(await track(`${dirOf.a}/in-sync`), "-30", "A alone, within its start-up grace");
      const b1 = await start("b");
      assertEquals(await track(`${dirOf.b}/in-sync`), "-30", "B just started: not in sync");
      await untilInSync(b1, 1);
      assertEquals(missing(b1, 0, 300), [], "the late B holds every session A had");
      await untilTrack(`${dirOf.b}/in-sync`, "0", b1);

      // 2. B restarts while A's kernel keeps sending; the new B's kernel sends sessions of its own.
      await injectRange(a, 300, 150, 3, 3);
      await b1.stop();
      assertEquals(await track(`${dirOf.b}/in-sync`), "-30", "a stopped daemon says: not in sync");
      await injectRange(a, 450, 75, 3, 3);
      const b2 = await start("b");
      await injectRange(b2, 10_000, 30, 3, 3);
      await injectRange(a, 525, 75, 3, 3);
      await untilInSync(b2, 1);
      await b2.until("every session of A at the restarted B", () => missing(b2, 0, 600).length === 0);
      await a.until("B's own sessions at A", () => missing(a, 10_000, 30).length === 0);

      // 3. A → B cut for 3 s — longer than B's stale time (2.5 heartbeats), shorter than its peer timeout (5) —
      // while A sends 300 datagrams (more than the 64 its resend buffer keeps).
      await fa.write("cut 1");
      const cutAt = Date.now();
      await injectRange(a, 600, 300, 1, 5);
      await sleep(Math.max(0, 3000 - (Date.now() - cutAt)));
      await fa.write("cut 0");
      assert(Date.now() - cutAt < 4500, "the cut stayed shorter than the peer timeout");
      // From here on, "0" in B's track file must mean B's kernel holds all 900 of A's sessions.
      let sawOutOfSync = false;
      const deadline = Date.now() + 30_000;
      while (true) {
        const value = await track(`${dirOf.b}/in-sync`);
        if (value === "0") {
          // The JOOLD_ADDs were written before the file; give the test's reader of B's stdout a moment.
          const lag = Date.now() + 1000;
          while (missing(b2, 0, 900).length > 0 && Date.now() < lag) await sleep(20);
          const absent = missing(b2, 0, 900);
          assertEquals(
            absent.length,
            0,
            `track file says in sync; B lacks ${absent.slice(0, 20).join(", ")}`,
          );
          if (sawOutOfSync) break;
        } else {
          assertEquals(value, "-30");
          sawOutOfSync = true;
        }
        if (Date.now() > deadline) throw new Error(`B never back in sync:\n${b2.log.join("\n")}`);
        await sleep(25);
      }
      assert(sawOutOfSync, "the cut was noticed");

      const stats = await untilInSync(b2, 1);
      const peer = reliableOf(stats).peers[0];
      assert(peer.lost > 0, `the cut lost datagrams for good: ${JSON.stringify(peer)}`);
      assert(peer.resyncRequests >= 2, `B asked for A's table again: ${JSON.stringify(peer)}`);
      assert(peer.gaps > peer.lost, `the lossy link made recoverable gaps too: ${JSON.stringify(peer)}`);
      assertEquals(
        peer.gaps,
        peer.reordered + peer.recovered + peer.lost + peer.missing,
        "every gap accounted",
      );
      const statsA = await queryStats(a.ns, STATS_PORT);
      assert(reliableOf(statsA).inSync, "A is in sync with B");
      assertEquals(await track(`${dirOf.a}/in-sync`), "0");
    } finally {
      for (const daemon of started) await daemon.stop();
      await lab.cleanup();
      for (const dir of dirs) await Deno.remove(dir, { recursive: true });
    }
  },
  NEEDS,
);
