/**
 * Summarises a V8 `.cpuprofile` (written by `deno run --cpu-prof`) by self time: the hot functions with their
 * file, line and share of all samples. `deno run --allow-read scripts/bench/profile.ts FILE [TOP]`.
 * @module
 */

/** One row of the summary. */
export interface HotSpot {
  readonly function: string;
  readonly location: string;
  readonly selfMs: number;
  readonly percent: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (summed over call sites), largest first; idle and GC rows kept (they are telling). */
export function hotSpots(profile: Profile, top = 15, root = ""): HotSpot[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { function: string; location: string; us: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    const frame = node.callFrame;
    const url = frame.url.replace(/^file:\/\//, "").replace(root, "");
    const location = url ? `${url}:${frame.lineNumber + 1}` : "(native)";
    const name = frame.functionName || "(anonymous)";
    const key = `${name}@${location}`;
    const row = self.get(key) ?? { function: name, location, us: 0 };
    row.us += dt;
    self.set(key, row);
  }
  return [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((r) => ({
      function: r.function,
      location: r.location,
      selfMs: Math.round(r.us / 100) / 10,
      percent: Math.round((1000 * r.us) / total) / 10,
    }));
}

/** Reads and summarises a .cpuprofile file. */
export function summariseFile(path: string, top = 15, root = ""): HotSpot[] {
  return hotSpots(JSON.parse(Deno.readTextFileSync(path)), top, root);
}

/** Markdown table of hot spots. */
export function hotSpotTable(spots: HotSpot[]): string {
  const lines = ["| % self | self ms | function | file:line |", "|---:|---:|---|---|"];
  for (const s of spots) lines.push(`| ${s.percent} | ${s.selfMs} | ${s.function} | ${s.location} |`);
  return lines.join("\n");
}

if (import.meta.main) {
  const [file, top] = Deno.args;
  if (!file) {
    console.error("usage: profile.ts FILE.cpuprofile [TOP]");
    Deno.exit(2);
  }
  const root = new URL("../../", import.meta.url).pathname;
  console.log(hotSpotTable(summariseFile(file, Number(top ?? 20), root)));
}
