/**
 * The reliable mode's late-peer convergence on the host: the real daemon (kernel double, Jool 4.1.13, format
 * C) in two namespaces joined by a veth pair, `"mode": "reliable"`. A's kernel double gets N distinct sessions
 * (36 a batch); once A has cached them all, B starts. Reported per N: time from B's spawn to its "relaying"
 * line, to every one of the N sessions in B's JOOLD_ADDs, and to B's json view saying in sync; A's RssAnon
 * before and after caching N sessions; the replay rate in force.
 *
 * `flock -x /tmp/joold-lab.lock npx deno run --allow-all --unstable-net scripts/bench/reliable_converge.ts
 * [--sizes 1000,10000,100000] [--repeat 3] [--replay-rate 2000]`; prints a markdown table and the JSON.
 * @module
 */
import { parseArgs } from "node:util";
import { Daemon, queryStats } from "../../tests/helpers/double_daemon.ts";
import { Lab, sh } from "../../tests/netns/namespaces.ts";
import { encodeEntry } from "../../lib/session/entries.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";

const STATS_PORT = 46702;
const PER_BATCH = 36;

/** Session n, distinct for n < 2²⁴: src6 2001:db8::n (24 bits), ports from n. */
function entry(n: number): Uint8Array {
  return encodeEntry({
    proto: 1,
    state: 0,
    timer: 0,
    expiration: 600_000,
    src6: Uint8Array.of(
      0x20,
      0x01,
      0x0d,
      0xb8,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      (n >> 16) & 0xff,
      (n >> 8) & 0xff,
      n & 0xff,
    ),
    src6Port: 1000 + (n % 50_000),
    src4: Uint8Array.of(192, 0, 2, 1),
    src4Port: 1024 + (n % 60_000),
    dst4: Uint8Array.of(203, 0, 113, 7),
    dst4Port: 53,
  }, "C");
}

/** Distinct sessions (by the 24 bits of src6) in the daemon's JOOLD_ADDs. */
function distinct(daemon: Daemon): number {
  const seen = new Set<number>();
  for (const container of daemon.adds()) {
    for (let at = 0; at + 40 <= container.length; at += 40) {
      seen.add((container[at + 17] << 16) | (container[at + 18] << 8) | container[at + 19]);
    }
  }
  return seen.size;
}

async function rssAnonKiB(ns: string): Promise<number> {
  let total = 0;
  for (const pid of (await sh("ip", "netns", "pids", ns)).split("\n").filter(Boolean)) {
    try {
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const match = /RssAnon:\s+(\d+) kB/.exec(status);
      if (match && status.includes("Name:\tdeno")) total += Number(match[1]);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return total;
}

interface Run {
  sessions: number;
  readyMs: number;
  allSessionsMs: number;
  inSyncMs: number;
  rssAnonAKiB: { before: number; after: number };
}

async function once(sessions: number, replayRate: number): Promise<Run> {
  const lab = new Lab();
  const dirs: string[] = [];
  const started: Daemon[] = [];
  try {
    const nsA = await lab.namespace("a");
    const nsB = await lab.namespace("b");
    await lab.link({ ns: nsA, name: "eth0", addresses: ["192.0.2.1/24"] }, {
      ns: nsB,
      name: "eth0",
      addresses: ["192.0.2.2/24"],
    });
    const dirOf: Record<string, string> = {};
    for (const [end, address] of [["a", "192.0.2.1"], ["b", "192.0.2.2"]]) {
      const dir = await Deno.makeTempDir({ prefix: `joold-converge-${end}-` });
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
          mode: "reliable",
          "replay rate": replayRate,
        }),
      );
      await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    }
    const a = new Daemon({ ns: nsA, dir: dirOf.a, statsPort: STATS_PORT });
    started.push(a);
    await a.ready();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await rssAnonKiB(nsA);
    for (let n = 0; n < sessions; n += PER_BATCH) {
      const count = Math.min(PER_BATCH, sessions - n);
      await a.inject(concatBytes(Array.from({ length: count }, (_, i) => entry(n + i))));
    }
    const deadline = Date.now() + 120_000;
    while (true) {
      const cache = (await queryStats(nsA, STATS_PORT)).reliable as { cache: { sessions: number } };
      if (cache.cache.sessions >= sessions) break;
      if (Date.now() > deadline) throw new Error(`A cached ${cache.cache.sessions} of ${sessions}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const after = await rssAnonKiB(nsA);

    const t0 = performance.now();
    const b = new Daemon({ ns: nsB, dir: dirOf.b, statsPort: STATS_PORT });
    started.push(b);
    await b.ready();
    const readyMs = performance.now() - t0;
    await b.until(`${sessions} sessions at B`, () => distinct(b) >= sessions);
    const allSessionsMs = performance.now() - t0;
    while (!((await queryStats(nsB, STATS_PORT)).reliable as { inSync: boolean }).inSync) {
      if (performance.now() - t0 > 120_000) throw new Error("B never in sync");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const inSyncMs = performance.now() - t0;
    return { sessions, readyMs, allSessionsMs, inSyncMs, rssAnonAKiB: { before, after } };
  } finally {
    for (const daemon of started) await daemon.stop();
    await lab.cleanup();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "1000,10000,100000" },
      repeat: { type: "string", default: "3" },
      "replay-rate": { type: "string", default: "2000" },
    },
  });
  const sizes = values.sizes.split(",").map(Number);
  const repeat = Number(values.repeat);
  const rate = Number(values["replay-rate"]);
  const results: Run[][] = [];
  for (const size of sizes) {
    const runs: Run[] = [];
    for (let i = 0; i < repeat; i++) runs.push(await once(size, rate));
    results.push(runs);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(`replay rate ${rate} datagrams/s, ${repeat} runs each, medians:\n`);
  console.log(
    "| sessions at A | B ready (ms) | all sessions at B (ms) | B in sync (json) (ms) | A RssAnon before → after caching (MiB) |",
  );
  console.log("|---:|---:|---:|---:|---:|");
  for (const runs of results) {
    const m = (f: (r: Run) => number) => median(runs.map(f));
    console.log(
      `| ${runs[0].sessions} | ${m((r) => r.readyMs).toFixed(0)} | ${
        m((r) => r.allSessionsMs).toFixed(0)
      } | ${m((r) => r.inSyncMs).toFixed(0)} | ${(m((r) => r.rssAnonAKiB.before) / 1024).toFixed(1)} → ${
        (m((r) => r.rssAnonAKiB.after) / 1024).toFixed(1)
      } |`,
    );
  }
  console.log("\n" + JSON.stringify(results));
}
