/**
 * ACK turnaround in the VM lab: reads the nlmon captures (`genl.pcap`, router A's netlink traffic) that the lab's
 * burst cases write and measures, for every kernel multicast (Jool header, genl cmd 0, pid 0), the time until
 * the next JOOLD_ACK (genl cmd 29) from the daemon. A small pcap reader, no dependencies.
 *
 * ```sh
 * bash scripts/deno.sh run --allow-read scripts/bench/lab_ack.ts .lab-out/burst-4.1.9-a158951 [DIR...]
 * bash scripts/deno.sh run --allow-read scripts/bench/lab_ack.ts FILE.pcap
 * ```
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { join } from "node:path";

/** One captured packet: capture time in microseconds, captured bytes and the original length. */
export interface PcapPacket {
  /** Capture time, µs since the epoch (a float: ns precision when the file has it). */
  us: number;
  /** The captured bytes (at most the snap length). */
  data: Uint8Array;
  /** Length on the wire. */
  origLen: number;
}

/** A parsed pcap file. */
export interface Pcap {
  linktype: number;
  packets: PcapPacket[];
}

/** A malformed capture file, with what was wrong. */
export class PcapError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PcapError";
  }
}

/** Parses a classic pcap file (µs or ns timestamps, either byte order). */
export function readPcap(bytes: Uint8Array): Pcap {
  if (bytes.length < 24) throw new PcapError(`pcap: ${bytes.length} bytes, shorter than the 24-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = v.getUint32(0, true);
  let le: boolean;
  let nano: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nano = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = v.getUint32(0, false);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) {
      throw new PcapError(`pcap: magic 0x${magicLe.toString(16)} is not a classic pcap file (pcapng?)`);
    }
    le = false;
    nano = magicBe === 0xa1b23c4d;
  }
  const linktype = v.getUint32(20, le) & 0x0fffffff;
  const packets: PcapPacket[] = [];
  let off = 24;
  // A capture cut short by kill leaves a partial last record: stop there.
  while (off + 16 <= bytes.length) {
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const incl = v.getUint32(off + 8, le);
    const orig = v.getUint32(off + 12, le);
    if (off + 16 + incl > bytes.length) break;
    packets.push({
      us: sec * 1e6 + (nano ? frac / 1000 : frac),
      data: bytes.subarray(off + 16, off + 16 + incl),
      origLen: orig,
    });
    off += 16 + incl;
  }
  return { linktype, packets };
}

const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_NETLINK = 253;
const LINKTYPE_LINUX_SLL2 = 276;
const ARPHRD_NETLINK = 824;

/** Offset of the netlink message inside a packet of `linktype` (cooked headers skipped). */
function netlinkOffset(linktype: number, data: Uint8Array): number {
  if (linktype === LINKTYPE_LINUX_SLL) return 16;
  if (linktype === LINKTYPE_LINUX_SLL2) return 20;
  if (linktype === LINKTYPE_NETLINK && data.length >= 16) {
    // libpcap gives nlmon captures a 16-byte cooked header (hatype ARPHRD_NETLINK) on some versions.
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (v.getUint16(2, false) === ARPHRD_NETLINK || v.getUint16(2, true) === ARPHRD_NETLINK) return 16;
  }
  return 0;
}

/** A Jool Generic Netlink message seen on the tap. */
export interface JoolEvent {
  us: number;
  /**
   * `mcast`: the kernel's session batch (cmd 0, pid 0); `ack`: a JOOLD_ACK (cmd 29); `add`: a JOOLD_ADD (cmd 27),
   * sessions from a peer handed to the kernel.
   */
  kind: "mcast" | "ack" | "add";
  /** Sessions in the batch (multicasts and JOOLD_ADDs), from the container's length and the first entry's length. */
  entries: number;
  iname: string;
}

const JOOL_MAGIC = [0x6a, 0x6f, 0x6f, 0x6c]; // "jool"
const CMD_JOOLD_ACK = 29;
const CMD_JOOLD_ADD = 27;

/** Picks the kernel's multicasts and the daemon's ACKs out of a netlink capture. */
export function joolEvents(pcap: Pcap): JoolEvent[] {
  const out: JoolEvent[] = [];
  for (const p of pcap.packets) {
    const o = netlinkOffset(pcap.linktype, p.data);
    const d = p.data.subarray(o);
    if (d.length < 48) continue;
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const type = v.getUint16(4, true);
    if (type < 0x10) continue; // NLMSG_ERROR, NLMSG_DONE…: netlink's own replies to the `jool` tool
    if (!JOOL_MAGIC.every((b, i) => d[20 + i] === b)) continue;
    const seq = v.getUint32(8, true);
    const pid = v.getUint32(12, true);
    const cmd = d[16];
    const nameBytes = d.subarray(32, 48);
    const nul = nameBytes.indexOf(0);
    const iname = new TextDecoder().decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul));
    let entries = 0;
    if (d.length >= 56) {
      const attrLen = v.getUint16(48, true);
      const entryLen = (v.getUint16(52, true) + 3) & ~3;
      if (entryLen > 4) entries = Math.floor((attrLen - 4 + 3) / entryLen);
    }
    if (cmd === 0 && pid === 0 && seq === 0) {
      out.push({ us: p.us, kind: "mcast", entries, iname });
    } else if (cmd === CMD_JOOLD_ADD) {
      out.push({ us: p.us, kind: "add", entries, iname });
    } else if (cmd === CMD_JOOLD_ACK) {
      out.push({ us: p.us, kind: "ack", entries: 0, iname });
    }
  }
  return out;
}

/** Per-capture figures: turnaround of each batch (ms), batch sizes and gaps between batches. */
export interface AckFigures {
  /** Multicasts (after collapsing copies to several sockets). */
  batches: number;
  acks: number;
  /** For each multicast followed by an ACK: ms from the multicast to that ACK. */
  turnaroundMs: number[];
  /** Multicasts with no ACK before the next multicast (the kernel's deadline fired, or the ACK was lost). */
  unanswered: number;
  /** Sessions per multicast. */
  entries: number[];
  /** ms between consecutive multicasts. */
  gapsMs: number[];
  /** Turnaround of each capture's first batch (the daemon's first ACK after start: cold code paths). */
  firstMs: number[];
}

/** Turnaround figures of one capture, for instance `iname` (all instances when undefined). */
export function ackFigures(events: JoolEvent[], iname?: string): AckFigures {
  const ev = events.filter((e) => iname === undefined || e.iname === iname).sort((a, b) => a.us - b.us);
  // The tap sees one copy of a multicast per subscribed socket: copies of the same batch come within a few µs.
  const mcasts: JoolEvent[] = [];
  const acks: number[] = [];
  for (const e of ev) {
    if (e.kind === "add") continue;
    if (e.kind === "ack") acks.push(e.us);
    else {
      const prev = mcasts.at(-1);
      const ackBetween = prev !== undefined && acks.length > 0 && acks[acks.length - 1] > prev.us;
      if (prev && !ackBetween && e.us - prev.us < 200 && e.entries === prev.entries) continue;
      mcasts.push(e);
    }
  }
  const turnaroundMs: number[] = [];
  let unanswered = 0;
  let ai = 0;
  for (let i = 0; i < mcasts.length; i++) {
    const t = mcasts[i].us;
    while (ai < acks.length && acks[ai] < t) ai++;
    const next = mcasts[i + 1]?.us ?? Infinity;
    if (ai < acks.length && acks[ai] <= next) turnaroundMs.push((acks[ai] - t) / 1000);
    else if (ai < acks.length) unanswered++;
    else unanswered++;
  }
  const gapsMs = mcasts.slice(1).map((m, i) => (m.us - mcasts[i].us) / 1000);
  return {
    batches: mcasts.length,
    acks: acks.length,
    turnaroundMs,
    unanswered,
    entries: mcasts.map((m) => m.entries),
    gapsMs,
    firstMs: turnaroundMs.length && mcasts.length ? [turnaroundMs[0]] : [],
  };
}

/** The q-quantile (0..1) of `xs` (nearest rank), NaN when empty. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Figures of one capture file. */
export function ackFiguresOfFile(path: string, iname = "default"): AckFigures {
  return ackFigures(joolEventsOfFile(path), iname);
}

/** A burst seen from both routers' netlink taps (`--b-netlink`), in ms from the burst's start. */
export interface BurstHops {
  /** A's kernel's last multicast of the burst (set by its flush rule: batch size, ACKs, the flush deadline). */
  lastMulticastMs: number;
  /** B's last JOOLD_ADD: every session of the burst handed to B's kernel. */
  lastAddMs: number;
  /** From A's first multicast to B's first JOOLD_ADD: the relay's first hop after the daemons' start. */
  firstHopMs: number;
  /** From A's last multicast to B's last JOOLD_ADD: the relay's hop at the end of the burst. */
  lastHopMs: number;
  /** Sessions in B's JOOLD_ADDs since the start. */
  sessions: number;
}

/**
 * The relay's hops in a burst from A's capture (`aEvents`) and B's (`bEvents`) of instance `iname`, both on the
 * guest's clock, counted from `startUs`; undefined when either saw nothing of the burst.
 */
export function burstHops(
  aEvents: JoolEvent[],
  bEvents: JoolEvent[],
  startUs: number,
  iname = "default",
): BurstHops | undefined {
  const since = (events: JoolEvent[], kind: JoolEvent["kind"]) =>
    events.filter((e) => e.kind === kind && e.iname === iname && e.us >= startUs).sort((x, y) => x.us - y.us);
  const multicasts = since(aEvents, "mcast");
  const adds = since(bEvents, "add");
  if (multicasts.length === 0 || adds.length === 0) return undefined;
  const ms = (us: number) => us / 1000;
  return {
    lastMulticastMs: ms(multicasts.at(-1)!.us - startUs),
    lastAddMs: ms(adds.at(-1)!.us - startUs),
    firstHopMs: ms(adds[0].us - multicasts[0].us),
    lastHopMs: ms(adds.at(-1)!.us - multicasts.at(-1)!.us),
    sessions: adds.reduce((n, e) => n + e.entries, 0),
  };
}

/** The Jool events of one capture file. */
export function joolEventsOfFile(path: string): JoolEvent[] {
  return joolEvents(readPcap(Deno.readFileSync(path)));
}

/** Pools the figures of several captures. */
export function pool(figs: AckFigures[]): AckFigures {
  return {
    batches: figs.reduce((n, f) => n + f.batches, 0),
    acks: figs.reduce((n, f) => n + f.acks, 0),
    turnaroundMs: figs.flatMap((f) => f.turnaroundMs),
    unanswered: figs.reduce((n, f) => n + f.unanswered, 0),
    entries: figs.flatMap((f) => f.entries),
    gapsMs: figs.flatMap((f) => f.gapsMs),
    firstMs: figs.flatMap((f) => f.firstMs),
  };
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "—");

/** One Markdown row: count, turnaround p50/p99/max, unanswered, sessions per batch, gap p50. */
export function ackRow(f: AckFigures): string {
  const t = f.turnaroundMs;
  return [
    f.batches,
    fmt(quantile(t, 0.5)),
    fmt(quantile(t, 0.99)),
    fmt(t.length ? Math.max(...t) : NaN),
    f.unanswered,
    fmt(quantile(f.entries, 0.5), 0),
    fmt(f.entries.length ? f.entries.reduce((a, b) => a + b, 0) / f.entries.length : NaN, 1),
    fmt(quantile(f.gapsMs, 0.5)),
  ].join(" | ");
}

/** Header matching {@link ackRow}. */
export const ACK_HEADER =
  "batches | turnaround p50 ms | p99 ms | max ms | unanswered | sessions/batch p50 | mean | gap between batches p50 ms";

/** `burst-DAEMON-N-R` case directories of a lab output directory, grouped by "DAEMON N". */
export function burstCaptures(labDir: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  const casesDir = join(labDir, "cases");
  const names = [...Deno.readDirSync(casesDir)].map((e) => e.name).sort();
  for (const name of names) {
    const m = /^burst-(ours|upstream)-(\d+)-\d+$/.exec(name);
    if (!m) continue;
    const pcap = join(casesDir, name, "genl.pcap");
    try {
      Deno.statSync(pcap);
    } catch {
      continue;
    }
    const key = `${m[1]} ${m[2]}`;
    groups.set(key, [...(groups.get(key) ?? []), pcap]);
  }
  return groups;
}

function main(args: string[]): number {
  if (args.length === 0 || args.includes("--help")) {
    console.log("usage: lab_ack.ts LAB_OUT_DIR|FILE.pcap ...   (prints Markdown tables)");
    return args.length === 0 ? 2 : 0;
  }
  for (const arg of args) {
    if (arg.endsWith(".pcap")) {
      console.log(`| file | ${ACK_HEADER} |\n|---|${"---|".repeat(8)}`);
      console.log(`| ${arg} | ${ackRow(ackFiguresOfFile(arg))} |`);
      continue;
    }
    let groups;
    try {
      groups = burstCaptures(arg);
    } catch (cause) {
      console.error(
        `lab_ack: ${arg}: no cases/ directory (${errorMessage(cause)})`,
      );
      return 1;
    }
    console.log(`\n${arg}\n\n| daemon | flows | runs | ${ACK_HEADER} |\n|---|---|---|${"---|".repeat(8)}`);
    for (const [key, files] of groups) {
      const [daemon, n] = key.split(" ");
      console.log(
        `| ${daemon} | ${n} | ${files.length} | ${ackRow(pool(files.map((f) => ackFiguresOfFile(f))))} |`,
      );
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
