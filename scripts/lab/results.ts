/**
 * Reads what the lab guest wrote (OUT/cases/NAME/: facts, session-table CSVs, `jool stats` text, daemon stats)
 * and turns it into checks. Pure parsing plus file reads; the assertions live in tests/vm and main.ts.
 * @module
 */
import { join } from "node:path";

/** Session-table protocols, as `jool session display --tcp|--udp|--icmp`. */
export const PROTOCOLS = ["tcp", "udp", "icmp"] as const;
/** One of {@link PROTOCOLS}. */
export type Protocol = typeof PROTOCOLS[number];

/** One row of `jool session display --numeric --csv`, without the expiry column. */
export interface Session {
  proto: string;
  remote6: string;
  local6: string;
  local4: string;
  remote4: string;
  /** TCP state ("ESTABLISHED", …); empty for UDP and ICMP. */
  state: string;
}

/** Parses `jool session display --numeric --csv` (header line, then one row per session). */
export function parseSessions(csv: string): Session[] {
  const rows: Session[] = [];
  for (const line of csv.split("\n")) {
    const f = line.trim().split(",");
    if (f.length < 10 || f[0] === "Protocol" || !/^(TCP|UDP|ICMP)$/.test(f[0])) continue;
    rows.push({
      proto: f[0],
      remote6: `[${f[1]}]:${f[2]}`,
      local6: `[${f[3]}]:${f[4]}`,
      local4: `${f[5]}:${f[6]}`,
      remote4: `${f[7]}:${f[8]}`,
      state: f[10] ?? "",
    });
  }
  return rows;
}

/** What identifies a session across routers: everything but the expiry. */
export function sessionKey(s: Session): string {
  return `${s.proto} ${s.remote6} ${s.local6} ${s.local4} ${s.remote4}${s.state ? " " + s.state : ""}`;
}

/** Parses `NAME: value` lines (`jool stats display --all`) or `NAME,value` lines (the six-line stats view). */
export function parseCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^([A-Z0-9_]+)[:,]\s*(\d+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** The daemon's `json` stats view (ours): counters, drops and kernel errors by code. */
export interface DaemonJsonStats {
  counters: Record<string, number>;
  drops: Record<string, number>;
  kernelErrors: Record<string, number>;
}

/** One router instance's state at one moment. */
export interface Snapshot {
  sessions: Record<Protocol, Session[]>;
  /** Whether every protocol's table was displayed (false when the instance did not exist). */
  present: boolean;
  /** `jool stats display --all` (≥4.1.12), or null. */
  jstat: Record<string, number> | null;
  /** The daemon's six-line view, or null when it did not answer. */
  statsText: Record<string, number> | null;
  /** The daemon's `json` view, or null when it did not answer it (upstream, or not running). */
  statsJson: DaemonJsonStats | null;
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Reads DIR/ROUTER.INSTANCE.* as written by the guest's `snapshot`. */
export function readSnapshot(dir: string, router: string, instance = "default"): Snapshot {
  const base = join(dir, `${router}.${instance}`);
  const csv = PROTOCOLS.map((p) => readText(`${base}.${p}.csv`) ?? "");
  const sessions = Object.fromEntries(PROTOCOLS.map((p, i) => [p, parseSessions(csv[i])])) as Record<
    Protocol,
    Session[]
  >;
  const present = csv.every((text) => text.startsWith("Protocol,"));
  const jstatText = readText(`${base}.jstat.txt`);
  const jstat = jstatText && jstatText.includes("JSTAT_") ? parseCounters(jstatText) : null;
  const text = readText(`${base}.stats.txt`);
  const statsText = text && text.includes("KERNEL_SENT_PKTS") ? parseCounters(text) : null;
  let statsJson: DaemonJsonStats | null = null;
  const json = readText(`${base}.stats.json`);
  if (json && json.trim().startsWith("{")) {
    try {
      const parsed = JSON.parse(json);
      if (parsed && typeof parsed === "object" && parsed.counters) statsJson = parsed;
    } catch {
      statsJson = null; // not our daemon's JSON view (e.g. upstream's six lines): no JSON stats
    }
  }
  return { sessions, present, jstat, statsText, statsJson };
}

/** One guest case: its facts (key=value) and directory. */
export interface CaseResult {
  name: string;
  dir: string;
  facts: Record<string, string>;
}

/** Reads every OUT/cases/NAME/facts. */
export function readCases(outDir: string): Map<string, CaseResult> {
  const cases = new Map<string, CaseResult>();
  const root = join(outDir, "cases");
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const dir = join(root, e.name);
    const facts: Record<string, string> = {};
    for (const line of (readText(join(dir, "facts")) ?? "").split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) facts[line.slice(0, i)] = line.slice(i + 1);
    }
    cases.set(e.name, { name: e.name, dir, facts });
  }
  return cases;
}

/** The verdict of one check, with a precise reason when it fails. */
export interface Verdict {
  ok: boolean;
  reason: string;
}

/**
 * Does `to` hold every session of `from`? Also requires `from` to hold at least `min[proto]` sessions of each
 * protocol, so empty tables never pass.
 */
export function mirrors(
  from: Snapshot,
  to: Snapshot,
  min: Partial<Record<Protocol, number>> = { tcp: 1, udp: 1, icmp: 1 },
  filter: (s: Session) => boolean = () => true,
): Verdict {
  const problems: string[] = [];
  for (const p of PROTOCOLS) {
    const src = from.sessions[p].filter(filter);
    const have = new Set(to.sessions[p].map(sessionKey));
    if (src.length < (min[p] ?? 0)) {
      problems.push(`source has ${src.length} ${p} sessions, expected ≥${min[p]}`);
    }
    const missing = src.filter((s) => !have.has(sessionKey(s)));
    if (missing.length > 0) {
      problems.push(`${missing.length}/${src.length} ${p} missing, e.g. ${sessionKey(missing[0])}`);
    }
  }
  return problems.length === 0
    ? { ok: true, reason: "mirrored" }
    : { ok: false, reason: problems.join("; ") };
}

/** Sessions whose IPv4 remote port lies in [lo, hi] (the guest uses 10001… through A, 20001… through B). */
export function udpPortRange(lo: number, hi: number): (s: Session) => boolean {
  return (s) => {
    if (s.proto !== "UDP") return true;
    const port = Number(s.remote4.split(":").at(-1));
    return port >= lo && port <= hi;
  };
}

/** Total sessions of a snapshot. */
export function sessionCount(s: Snapshot): number {
  return PROTOCOLS.reduce((n, p) => n + s.sessions[p].length, 0);
}

/** Renders two snapshots' tables side by side (for humans). */
export function sideBySide(a: Snapshot, b: Snapshot, labelA = "router A", labelB = "router B"): string {
  const lines: string[] = [];
  const width = 78;
  const short = (s: Session) => `${s.proto} ${s.remote6} → ${s.remote4} via ${s.local4} ${s.state}`.trim();
  lines.push(`${labelA.padEnd(width)} | ${labelB}`);
  lines.push(`${"-".repeat(width)}-+-${"-".repeat(width)}`);
  for (const p of PROTOCOLS) {
    const keys = [...new Set([...a.sessions[p], ...b.sessions[p]].map(sessionKey))].sort();
    const inA = new Map(a.sessions[p].map((s) => [sessionKey(s), s]));
    const inB = new Map(b.sessions[p].map((s) => [sessionKey(s), s]));
    for (const k of keys) {
      const sa = inA.get(k), sb = inB.get(k);
      lines.push(`${(sa ? short(sa) : "(missing)").padEnd(width)} | ${sb ? short(sb) : "(missing)"}`);
    }
  }
  return lines.join("\n");
}
