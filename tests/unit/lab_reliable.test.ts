/**
 * The VM lab's reliable-mode checks (tests/vm/reliable_lab.ts) against guest outputs written here: a good run
 * passes every step, and each broken run fails the step it is about (so the lab's checks can fail).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { join } from "node:path";
import { readCases } from "../../scripts/lab/results.ts";
import { parseTrackTrace, reliableChecks, trackValuesBetween } from "../vm/reliable_lab.ts";

Deno.test("lab reliable: track file traces parse, and the values between two instants merge repeats", () => {
  const trace = parseTrackTrace("100 absent\n250 -50\n900 0\n\n1500 -50\n1600 0\nnoise\n");
  assertEquals(trace.length, 5);
  assertEquals(trackValuesBetween(trace, 200, 1000), ["-50", "0"]);
  assertEquals(trackValuesBetween(trace, 300, 1000), ["-50", "0"], "the value in force at the start counts");
  assertEquals(trackValuesBetween(trace, 0, 1700), ["-50", "0", "-50", "0"]);
  assertEquals(trackValuesBetween(trace, 1000, 1400), ["0"]);
});

const HEADER = "Protocol,IPv6 remote address,IPv6 remote port,IPv6 local address,IPv6 local port," +
  "IPv4 local address,IPv4 local port,IPv4 remote address,IPv4 remote port,Expires in,State\n";

/** `n` UDP sessions to ports base+1…, one TCP and `icmp` ICMP sessions, as `jool session display --csv`. */
function tables(udpBase: number, n: number, icmp: number): Record<string, string> {
  const udp = Array.from(
    { length: n },
    (_, i) =>
      `UDP,2001:db8:6::10,${30000 + i},64:ff9b::c000:20a,${udpBase + 1 + i},198.51.100.1,${
        61001 + i
      },192.0.2.10,${udpBase + 1 + i},00:29:59,`,
  );
  const icmps = Array.from(
    { length: icmp },
    (_, i) =>
      `ICMP,2001:db8:6::10,${udpBase + i},64:ff9b::c000:20a,${udpBase + i},198.51.100.1,${
        62001 + udpBase + i
      },192.0.2.10,${62001 + udpBase + i},00:29:59,`,
  );
  return {
    tcp: HEADER +
      "TCP,2001:db8:6::10,40000,64:ff9b::c000:20a,7,198.51.100.1,63001,192.0.2.10,7,02:00:00,ESTABLISHED\n",
    udp: HEADER + udp.join("\n") + "\n",
    icmp: HEADER + icmps.join("\n") + "\n",
  };
}

function merge(...ts: Record<string, string>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of ["tcp", "udp", "icmp"]) {
    const rows = new Set(ts.flatMap((t) => t[p].split("\n").slice(1).filter(Boolean)));
    out[p] = HEADER + [...rows].join("\n") + "\n";
  }
  return out;
}

function reliableJson(own: number, peers: number, inSync = true): string {
  return JSON.stringify({
    counters: { NET_RCVD_PKTS: 1 },
    drops: {},
    kernelErrors: {},
    reliable: {
      inSync,
      cache: { sessions: own, own },
      peers: Array.from({ length: peers }, () => ({ id: "0a0b0c0d", inSync, replaysCompleted: 1 })),
    },
  });
}

function writeSnap(dir: string, router: string, t: Record<string, string>, json?: string): void {
  Deno.mkdirSync(dir, { recursive: true });
  for (const p of ["tcp", "udp", "icmp"]) {
    Deno.writeTextFileSync(join(dir, `${router}.default.${p}.csv`), t[p]);
  }
  if (json) Deno.writeTextFileSync(join(dir, `${router}.default.stats.json`), json);
}

/** A guest output of a passing reliable case; `breaks` spoils one part of it. */
function writeCase(root: string, breaks?: "b-missing" | "track-early" | "no-echo" | "a-missing"): string {
  const dir = join(root, "cases", "reliable");
  const fromA = tables(10000, 600, 5), fromB = tables(20000, 100, 3);
  const all = merge(fromA, fromB);
  const partial = tables(10000, 550, 5);
  const empty = { tcp: HEADER, udp: HEADER, icmp: HEADER };
  writeSnap(join(dir, "alone"), "A", fromA, reliableJson(606, 0));
  writeSnap(join(dir, "alone"), "B", empty);
  writeSnap(join(dir, "converged"), "A", fromA, reliableJson(606, 1));
  writeSnap(join(dir, "converged"), "B", breaks === "b-missing" ? partial : fromA, reliableJson(0, 1));
  writeSnap(join(dir, "restarted"), "B", all, reliableJson(104, 1));
  writeSnap(join(dir, "restarted"), "A", breaks === "a-missing" ? fromA : all, reliableJson(0, 1));
  const facts = {
    kind: "reliable",
    daemon: "ours",
    flows: 600,
    new_flows: 100,
    track_weight: -50,
    ready_a: "yes",
    tcp_open: "yes",
    traffic_ms: 20000,
    tcp_before_b: "yes",
    b_start_ms: 100000,
    ready_b: "yes",
    b_ready_ms: 3000,
    b_mirror_ms: 6000,
    b_mirrored_at_track0: breaks === "track-early" ? "no" : "yes",
    b_converged: "yes",
    b_done_ms: 107000,
    b_held: breaks === "b-missing" ? "556 606" : "606 606",
    failover_at_ms: 108000,
    failover_echo: breaks === "no-echo" ? "no" : "yes",
    tcp_while_a_down: "yes",
    a_sessions_reboot: 0,
    a_start_ms: 130000,
    ready_a2: "yes",
    a_mirror_ms: 5000,
    a_mirrored_at_track0: "yes",
    a_converged: "yes",
    a_done_ms: 136000,
    a_held: "710 710",
  };
  Deno.writeTextFileSync(join(dir, "facts"), Object.entries(facts).map(([k, v]) => `${k}=${v}\n`).join(""));
  Deno.writeTextFileSync(
    join(dir, "track-B.trace"),
    breaks === "track-early"
      ? "90000 absent\n100500 -50\n101000 0\n"
      : "90000 absent\n100500 -50\n105500 0\n120000 -50\n125000 0\n140000 -50\n",
  );
  Deno.writeTextFileSync(
    join(dir, "track-A.trace"),
    "90000 absent\n91000 -50\n93000 0\n110000 -50\n134000 0\n",
  );
  return root;
}

/** Runs the checks with a stand-in for Deno.TestContext; returns the names of the steps that failed. */
async function failedSteps(root: string): Promise<string[]> {
  const failed: string[] = [];
  const t = {
    step: async (name: string, fn: () => void | Promise<void>) => {
      try {
        await fn();
      } catch {
        failed.push(name);
      }
      return true;
    },
  } as unknown as Deno.TestContext;
  const c = readCases(root).get("reliable");
  assert(c, "no case written");
  const log = console.error;
  console.error = () => {};
  try {
    await reliableChecks(t, "4.1.9", c);
  } finally {
    console.error = log;
  }
  return failed;
}

Deno.test("lab reliable checks: a good run passes; each broken run fails its step", async () => {
  const root = Deno.makeTempDirSync({ prefix: "lab-reliable-" });
  try {
    assertEquals(await failedSteps(writeCase(join(root, "good"))), []);
    const cases = [
      ["b-missing", /B's table holds all of A's sessions/],
      ["track-early", /track file says -50 until B is in sync/],
      ["no-echo", /TCP connection opened through A echoes through B/],
      ["a-missing", /A back after the failover/],
    ] as const;
    for (const [breaks, step] of cases) {
      const failed = await failedSteps(writeCase(join(root, breaks), breaks));
      assertEquals(failed.length, 1, `${breaks}: ${failed.join("; ")}`);
      assert(step.test(failed[0]), `${breaks}: failed ${failed[0]}`);
    }
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
