/**
 * The VM lab's reliable-mode case (scripts/lab/guest/reliable.sh; issue 11's lab bar): a standby B whose daemon
 * starts after A holds ≥ 500 sessions converges with no command and its track file flips to 0; a failover right
 * after carries the TCP connection opened through A; an A that comes back after the failover gets B's sessions.
 * On 4.1.9 also upstream's joold, started late in the same way, for reference. Used by lab_suite.ts.
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { join } from "node:path";
import type { LabJoolVersion } from "../../scripts/lab/lab.ts";
import {
  type CaseResult,
  mirrors,
  readSnapshot,
  sessionCount,
  type Snapshot,
  udpPortRange,
} from "../../scripts/lab/results.ts";

/** Sessions a late B must converge to at least (the bar). */
const MIN_SESSIONS = 500;

/** The reliable-mode cases one boot runs for `version` (suite.sh syntax `reliable:NAME:DAEMON`). */
export function reliableCaseSpecs(version: LabJoolVersion): string[] {
  // Upstream's late B for comparison where upstream cannot catch up by itself nor with an advertise (4.1.9).
  return ["reliable:reliable:ours", ...(version === "4.1.9" ? ["reliable:late-upstream:upstream"] : [])];
}

/** One value a track file took: when (guest uptime, ms) and what ("absent" before the file exists). */
export interface TrackValue {
  ms: number;
  value: string;
}

/** Parses a track file trace ("UPTIME_MS VALUE" lines, written by track_watch_start in reliable.sh). */
export function parseTrackTrace(text: string): TrackValue[] {
  return text.split("\n").map((l) => l.trim().split(" ")).filter((f) => f.length === 2 && /^\d+$/.test(f[0]))
    .map(([ms, value]) => ({ ms: Number(ms), value }));
}

/** The values a trace shows from `from` to `to` (ms), "absent" left out, consecutive repeats merged. */
export function trackValuesBetween(trace: TrackValue[], from: number, to: number): string[] {
  const out: string[] = [];
  // The value in force at `from` counts too: the file may have been written just before.
  const inForce = trace.filter((v) => v.ms <= from).at(-1);
  for (const v of [...(inForce ? [inForce] : []), ...trace.filter((v) => v.ms > from && v.ms <= to)]) {
    if (v.value !== "absent" && v.value !== out.at(-1)) out.push(v.value);
  }
  return out;
}

/** "HELD TOTAL" (a fact of reliable.sh's `held`) as numbers. */
function heldOf(fact: string | undefined): { held: number; total: number } {
  const [held, total] = (fact ?? "").split(" ").map(Number);
  return { held: held ?? NaN, total: total ?? NaN };
}

interface PeerStatus {
  id: string;
  inSync: boolean;
  replaysCompleted: number;
  resyncRequests: number;
  lost: number;
}
interface ReliableStatus {
  inSync: boolean;
  cache: { sessions: number; own: number };
  peers: PeerStatus[];
}

/** The reliable mode's part of our daemon's json view, or undefined. */
function reliableOf(s: Snapshot): ReliableStatus | undefined {
  return (s.statsJson as unknown as { reliable?: ReliableStatus } | null)?.reliable;
}

function readOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The checks of one reliable-mode case (its spec's DAEMON decides which). */
export async function reliableChecks(
  t: Deno.TestContext,
  version: LabJoolVersion,
  c: CaseResult,
): Promise<void> {
  if (c.facts.daemon === "upstream") return await upstreamReference(t, version, c);
  const f = c.facts;
  const label = `${c.name} (ours, "mode": "reliable", Jool ${version})`;
  const aloneA = readSnapshot(join(c.dir, "alone"), "A"), aloneB = readSnapshot(join(c.dir, "alone"), "B");
  const convA = readSnapshot(join(c.dir, "converged"), "A"),
    convB = readSnapshot(join(c.dir, "converged"), "B");
  const traceA = parseTrackTrace(readOr(join(c.dir, "track-A.trace")));
  const traceB = parseTrackTrace(readOr(join(c.dir, "track-B.trace")));
  const bStart = Number(f.b_start_ms), aStart = Number(f.a_start_ms);

  await t.step(`${label}: A alone: ≥ ${MIN_SESSIONS} sessions through A, all handed to A's daemon`, () => {
    assertEquals([f.ready_a, f.tcp_open, f.tcp_before_b], ["yes", "yes", "yes"], `see ${c.dir}`);
    const n = sessionCount(aloneA);
    assert(n >= MIN_SESSIONS, `A holds ${n} sessions`);
    const own = reliableOf(aloneA)?.cache.own;
    // What A's kernel never handed its daemon (a 4.1.9 burst, #410) no sync mode can carry: say so apart.
    assert(own !== undefined && own >= n, `A's daemon holds ${own} of its kernel's sessions, A's table ${n}`);
    assertEquals(sessionCount(aloneB), 0, "B's table before its daemon started");
    console.error(
      `  ${c.name}: A alone: ${n} sessions (${f.flows} UDP flows in ${seconds(Number(f.traffic_ms))})`,
    );
  });

  await t.step(
    `${label}: B's daemon started late: B's table holds all of A's sessions (≥ ${MIN_SESSIONS}), no command`,
    () => {
      assertEquals(f.ready_b, "yes", `see ${c.dir}/d-B-default.log`);
      const { held, total } = heldOf(f.b_held);
      const v = mirrors(convA, convB);
      assert(v.ok, `${v.reason} (held ${held} of ${total})`);
      assertEquals(f.b_converged, "yes");
      assert(total >= MIN_SESSIONS && held === total, `B holds ${held} of A's ${total}`);
      const flip = traceB.find((v) => v.ms > bStart && v.value === "0");
      console.error(
        `  ${c.name}: late B holds ${held}/${total} of A's sessions; from B's start: answering after ` +
          `${seconds(Number(f.b_ready_ms))}, track file 0 after ${
            flip ? seconds(flip.ms - bStart) : "never"
          }, ` +
          `table seen complete by the poll after ${seconds(Number(f.b_mirror_ms))}`,
      );
    },
  );

  await t.step(`${label}: B's track file says ${f.track_weight} until B is in sync, then 0`, () => {
    const values = trackValuesBetween(traceB, bStart, Number(f.failover_at_ms));
    assertEquals(values, [f.track_weight, "0"], `B's track file from its start to the failover`);
    assertEquals(f.b_mirrored_at_track0, "yes", "B's track file said 0 before B's table held A's sessions");
  });

  await t.step(`${label}: B's json view: in sync with A, a replay from A completed`, () => {
    const r = reliableOf(convB);
    assert(r, `no reliable section in B's json view; see ${c.dir}/converged/B.default.stats.json`);
    assertEquals(r.inSync, true);
    assertEquals(r.peers.length, 1, JSON.stringify(r.peers));
    assert(r.peers[0].inSync && r.peers[0].replaysCompleted >= 1, JSON.stringify(r.peers[0]));
  });

  await t.step(`${label}: failover right after: the TCP connection opened through A echoes through B`, () => {
    assertEquals(f.failover_echo, "yes");
  });

  await t.step(
    `${label}: A back after the failover (instance re-created, daemon restarted) gets B's sessions, no command`,
    () => {
      assertEquals(f.readd_failed, undefined, "jool instance add failed on A");
      assertEquals(f.a_sessions_reboot, "0", "A's re-created instance was not empty");
      assertEquals(f.ready_a2, "yes", `see ${c.dir}/d-A-default.log`);
      const a = readSnapshot(join(c.dir, "restarted"), "A"), b = readSnapshot(join(c.dir, "restarted"), "B");
      const fresh = Number(f.new_flows);
      const news = mirrors(b, a, { udp: fresh }, udpPortRange(20001, 20000 + fresh));
      assert(news.ok, `B's new sessions: ${news.reason}`);
      const all = mirrors(b, a, { udp: MIN_SESSIONS });
      assert(all.ok, `B's whole table: ${all.reason}`);
      assertEquals(f.a_converged, "yes");
      const values = trackValuesBetween(traceA, aStart, Number(f.a_done_ms));
      assertEquals(values.at(-1), "0", `A's track file after its restart: ${values.join(" → ")}`);
      assertEquals(f.a_mirrored_at_track0, "yes", "A's track file said 0 before A's table held B's sessions");
      const { held, total } = heldOf(f.a_held);
      const flip = traceA.find((v) => v.ms > aStart && v.value === "0");
      console.error(
        `  ${c.name}: A back holds ${held}/${total} of B's sessions (${fresh} of them new through B); ` +
          `track file 0 after ${flip ? seconds(flip.ms - aStart) : "never"} from A's restart`,
      );
    },
  );
}

/** Upstream's joold on B, started late the same way (reference: it never catches up by itself). */
async function upstreamReference(t: Deno.TestContext, version: LabJoolVersion, c: CaseResult): Promise<void> {
  const f = c.facts;
  const late = heldOf(f.b_held_late), advertised = heldOf(f.b_held_advertised);
  await t.step(
    `${c.name} (upstream reference, Jool ${version}): A alone held ≥ ${MIN_SESSIONS} sessions`,
    () => {
      assertEquals([f.ready_a, f.ready_b], ["yes", "yes"], `see ${c.dir}`);
      assert(late.total >= MIN_SESSIONS, `A holds ${late.total} sessions`);
    },
  );
  await t.step(
    `${c.name} (upstream reference): a late upstream B does not get A's older sessions by itself`,
    () => {
      console.error(
        `  ${c.name}: after ${f.waited_s} s B held ${late.held}/${late.total} of A's sessions; ` +
          `${advertised.held}/${advertised.total} 10 s after the advertise on A (${f.advertise_cmd})`,
      );
      assert(late.held < late.total, `B held ${late.held} of ${late.total}`);
      // Advertise dumps nothing on 4.1.9/4.1.10 (fixed in 4.1.11): only a later version may fill B with it.
      if (version === "4.1.9") {
        assert(advertised.held < advertised.total, `after the advertise: ${advertised.held}`);
      }
    },
  );
}
