/**
 * Summarises VM lab burst runs (`deno task lab --burst [--daemon-rev REV]`, one output directory per Jool version
 * and daemon commit) as Markdown tables for BENCHMARKS.md: sessions that reached B, time until B converged, the
 * kernel's JSTAT_JOOLD_* (4.1.13), daemon RSS, and the ACK turnaround per batch (scripts/bench/lab_ack.ts).
 * Medians of the repeats; upstream beside ours, with the ratio ours/upstream.
 *
 * ```sh
 * bash scripts/deno.sh run --allow-read scripts/bench/lab_burst.ts .lab-out/burst-4.1.9-COMMIT .lab-out/burst-4.1.13-COMMIT
 * ```
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { join } from "node:path";
import { existsSync } from "node:fs";
import {
  type AckFigures,
  ackFigures,
  type BurstHops,
  burstHops,
  type JoolEvent,
  joolEventsOfFile,
  pool,
  quantile,
} from "./lab_ack.ts";

/** One burst case (one run of one daemon kind and size). */
interface Run {
  daemon: "ours" | "upstream";
  flows: number;
  facts: Record<string, string>;
  jstat: Record<string, number>;
  ack: AckFigures | null;
  /** From both routers' netlink captures (`--b-netlink`), else undefined. */
  hops: BurstHops | undefined;
}

/** One lab output directory. */
interface LabRun {
  dir: string;
  version: string;
  commit: string;
  runs: Run[];
}

function readKeyValues(path: string, sep: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const i = line.indexOf(sep);
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + sep.length).trim();
  }
  return out;
}

function readLabRun(dir: string): LabRun {
  const job = readKeyValues(join(dir, "job.env"), "=");
  const version = (job["export JOOL_VERSION"] ?? "?").replaceAll("'", "");
  let commit = "working tree";
  try {
    commit = Deno.readTextFileSync(join(dir, "daemon-commit")).trim();
  } catch {
    // no --daemon-rev: the working tree ran
  }
  const runs: Run[] = [];
  const casesDir = join(dir, "cases");
  for (const e of [...Deno.readDirSync(casesDir)].sort((a, b) => a.name.localeCompare(b.name))) {
    const m = /^burst-(ours|upstream)-(\d+)-\d+$/.exec(e.name);
    if (!m) continue;
    const c = join(casesDir, e.name);
    const jstat = Object.fromEntries(
      Object.entries(readKeyValues(join(c, "end", "A.default.jstat.txt"), ":")).map((
        [k, v],
      ) => [k, Number(v)]),
    );
    // A's capture is read once: the turnaround figures and, with B's capture (`--b-netlink`), the hops.
    let aEvents: JoolEvent[] | null = null;
    try {
      aEvents = joolEventsOfFile(join(c, "genl.pcap"));
    } catch {
      aEvents = null;
    }
    const ack: AckFigures | null = aEvents && ackFigures(aEvents, "default");
    const facts = readKeyValues(join(c, "facts"), "=");
    const bCapture = join(c, "genl-b.pcap");
    const hops = aEvents && existsSync(bCapture)
      ? burstHops(aEvents, joolEventsOfFile(bCapture), Number(facts.burst_start_us))
      : undefined;
    runs.push({ daemon: m[1] as "ours" | "upstream", flows: Number(m[2]), facts, jstat, ack, hops });
  }
  return { dir, version, commit, runs };
}

const median = (xs: number[]) => quantile(xs.filter(Number.isFinite), 0.5);
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
const ratio = (
  o: number,
  u: number,
) => (Number.isFinite(o) && Number.isFinite(u) && u !== 0 ? `${(o / u).toFixed(2)}×` : "—");

function reached(r: Run): number {
  return Number(r.facts.a_udp) - Number(r.facts.missing);
}
function rssMiB(value: string | undefined, which: 0 | 1): number {
  const kb = Number((value ?? "").split("/")[which]);
  return value && Number.isFinite(kb) && kb > 0 ? kb / 1024 : NaN;
}

function sizes(lab: LabRun): number[] {
  return [...new Set(lab.runs.map((r) => r.flows))].sort((a, b) => a - b);
}
function pick(lab: LabRun, daemon: string, flows: number): Run[] {
  return lab.runs.filter((r) => r.daemon === daemon && r.flows === flows);
}

function burstTable(labs: LabRun[]): string[] {
  const rows = [
    "| Jool | daemon commit | flows | runs | ours: reached B (median, %) | upstream: reached B | ours: per run | upstream: per run | ours: ms until B converged (median) | upstream | ratio |",
    "|---|---|--:|--:|--:|--:|---|---|--:|--:|--:|",
  ];
  for (const lab of labs) {
    for (const n of sizes(lab)) {
      const o = pick(lab, "ours", n);
      const u = pick(lab, "upstream", n);
      const conv = (rs: Run[]) =>
        median(rs.map((r) => (r.facts.a_to_b === "yes" ? Number(r.facts.waited_ms) : NaN)));
      const convText = (rs: Run[]) => {
        const ok = rs.filter((r) => r.facts.a_to_b === "yes").length;
        return `${f(conv(rs))}${ok < rs.length ? ` (${rs.length - ok}/${rs.length} never)` : ""}`;
      };
      const pct = (rs: Run[]) => {
        const m = median(rs.map(reached));
        return `${f(m)} (${f((100 * m) / n, 0)} %)`;
      };
      rows.push(
        `| ${lab.version} | ${lab.commit.slice(0, 7)} | ${n} | ${o.length}+${u.length} | ${pct(o)} | ${
          pct(u)
        } | ${o.map(reached).join(", ")} | ${u.map(reached).join(", ")} | ${convText(o)} | ${convText(u)} | ${
          ratio(conv(o), conv(u))
        } |`,
      );
    }
  }
  return rows;
}

function hopsTable(labs: LabRun[]): string[] {
  const rows = [
    "| Jool | daemon commit | flows | daemon | B's last JOOLD_ADD, ms (median) | ratio ours/upstream | per run | A's last multicast, per run | hop at the end: A's last multicast → B's last ADD, per run | first hop: A's first multicast → B's first ADD, per run |",
    "|---|---|--:|---|--:|--:|---|---|---|---|",
  ];
  for (const lab of labs) {
    for (const n of sizes(lab)) {
      const last = (d: string) => median(pick(lab, d, n).map((r) => r.hops?.lastAddMs ?? NaN));
      for (const d of ["ours", "upstream"]) {
        const hs = pick(lab, d, n).map((r) => r.hops);
        if (!hs.some((h) => h)) continue;
        const each = (k: keyof BurstHops, digits: number) =>
          hs.map((h) => f(h?.[k] ?? NaN, digits)).join(", ");
        rows.push(
          `| ${lab.version} | ${lab.commit.slice(0, 7)} | ${n} | ${d} | ${f(last(d))} | ${
            d === "ours" ? ratio(last("ours"), last("upstream")) : ""
          } | ${each("lastAddMs", 0)} | ${each("lastMulticastMs", 0)} | ${each("lastHopMs", 1)} | ${
            each("firstHopMs", 1)
          } |`,
        );
      }
    }
  }
  return rows;
}

const JSTATS = ["PKT_SENT", "ACKS", "MISSING_ACK", "TIMEOUT", "SSS_ENOSPC", "SSS_SENT"];

function jstatTable(labs: LabRun[]): string[] {
  const rows = [
    `| Jool | daemon commit | flows | daemon | ${JSTATS.map((s) => `JSTAT_JOOLD_${s}`).join(" | ")} |`,
    `|---|---|--:|---|${"--:|".repeat(JSTATS.length)}`,
  ];
  for (const lab of labs.filter((l) => l.version !== "4.1.9")) {
    for (const n of sizes(lab)) {
      for (const d of ["ours", "upstream"]) {
        const rs = pick(lab, d, n);
        const cells = JSTATS.map((s) => f(median(rs.map((r) => r.jstat[`JSTAT_JOOLD_${s}`] ?? NaN))));
        rows.push(`| ${lab.version} | ${lab.commit.slice(0, 7)} | ${n} | ${d} | ${cells.join(" | ")} |`);
      }
    }
  }
  return rows;
}

function rssTable(labs: LabRun[]): string[] {
  const rows = [
    "| Jool | daemon commit | daemon | A idle | B idle | A after burst | B after burst | A peak (VmHWM) | process |",
    "|---|---|---|--:|--:|--:|--:|--:|---|",
  ];
  for (const lab of labs) {
    for (const d of ["ours", "upstream"]) {
      const rs = lab.runs.filter((r) => r.daemon === d);
      const m = (k: string, w: 0 | 1) => f(median(rs.map((r) => rssMiB(r.facts[k], w))), 1);
      const name = rs.map((r) => (r.facts.rss_after_a ?? "").split("/")[2]).find((x) => x) ?? "?";
      rows.push(
        `| ${lab.version} | ${lab.commit.slice(0, 7)} | ${d} | ${m("rss_idle_a", 0)} | ${
          m("rss_idle_b", 0)
        } | ${m("rss_after_a", 0)} | ${m("rss_after_b", 0)} | ${m("rss_after_a", 1)} | ${name} |`,
      );
    }
  }
  return rows;
}

function ackTable(labs: LabRun[]): string[] {
  const rows = [
    "| Jool | daemon commit | flows | daemon | batches (all runs) | turnaround p50 ms | p99 ms | max ms | unanswered | sessions/batch (mean) | gap between batches p50 ms | p50 ratio ours/upstream | first batch of a run: turnaround ms, per run |",
    "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const lab of labs) {
    for (const n of sizes(lab)) {
      const figs = Object.fromEntries(
        ["ours", "upstream"].map((d) => [d, pool(pick(lab, d, n).flatMap((r) => (r.ack ? [r.ack] : [])))]),
      );
      for (const d of ["ours", "upstream"]) {
        const a = figs[d];
        const t = a.turnaroundMs;
        const mean = a.entries.length ? a.entries.reduce((x, y) => x + y, 0) / a.entries.length : NaN;
        rows.push(
          `| ${lab.version} | ${lab.commit.slice(0, 7)} | ${n} | ${d} | ${a.batches} | ${
            f(quantile(t, 0.5), 2)
          } | ${f(quantile(t, 0.99), 2)} | ${f(t.length ? Math.max(...t) : NaN, 2)} | ${a.unanswered} | ${
            f(mean, 1)
          } | ${f(quantile(a.gapsMs, 0.5), 2)} | ${
            d === "ours" ? ratio(quantile(t, 0.5), quantile(figs.upstream.turnaroundMs, 0.5)) : ""
          } | ${a.firstMs.map((x) => f(x, 1)).join(", ")} |`,
        );
      }
    }
  }
  return rows;
}

function main(args: string[]): number {
  if (args.length === 0 || args.includes("--help")) {
    console.log("usage: lab_burst.ts LAB_OUT_DIR...   (directories written by `deno task lab --burst`)");
    return args.length === 0 ? 2 : 0;
  }
  let labs: LabRun[];
  try {
    labs = args.map(readLabRun);
  } catch (cause) {
    console.error(
      `lab_burst: ${errorMessage(cause)}: pass lab --burst output directories`,
    );
    return 1;
  }
  console.log(
    [
      "### Sessions that reached B, time until B converged",
      "",
      ...burstTable(labs),
      "",
      "### From the burst's start to B's last JOOLD_ADD, and the relay's hops (both routers' netlink taps, `--b-netlink`; rows only with it)",
      "",
      ...hopsTable(labs),
      "",
      "### ACK turnaround per batch (router A's netlink tap)",
      "",
      ...ackTable(labs),
      "",
      "### Kernel joold stats on A after the burst (4.1.13, median of runs)",
      "",
      ...jstatTable(labs),
      "",
      "### Daemon RSS in the guest, MiB (median of all runs of that daemon)",
      "",
      ...rssTable(labs),
    ].join("\n"),
  );
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
