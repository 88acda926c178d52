/**
 * Asks a daemon's V8 inspector (Chrome DevTools Protocol) for a full garbage collection, then for the main
 * isolate's heap usage; prints `{"used": bytes, "total": bytes}`. With `--snapshot FILE` it also writes a heap
 * snapshot there (open it in Chrome's DevTools, or compare two with `--compare A B`: the object kinds that grew).
 * Run inside the daemon's namespace:
 * `ip netns exec NS deno run --allow-net --allow-write scripts/bench/heap_usage.ts 127.0.0.1:9229`. Used by the
 * soak (`--soak-heap`) to tell live JavaScript objects that accumulate from a heap that merely grows before a
 * major GC.
 * @module
 */
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { snapshot: { type: "string" }, compare: { type: "boolean" } },
});

if (values.compare) {
  const [before, after] = await Promise.all(positionals.map(kinds));
  const rows = [...after].map(([kind, a]) => {
    const b = before.get(kind) ?? { count: 0, bytes: 0 };
    return { kind, count: a.count - b.count, bytes: a.bytes - b.bytes };
  }).sort((x, y) => y.bytes - x.bytes).slice(0, 25);
  for (const r of rows) {
    console.log(`${String(r.bytes).padStart(10)} B ${String(r.count).padStart(8)} × ${r.kind}`);
  }
  Deno.exit(0);
}

/** Objects of a snapshot by kind (node type and name): count and self size. */
async function kinds(file: string): Promise<Map<string, { count: number; bytes: number }>> {
  const snapshot = JSON.parse(await Deno.readTextFile(file));
  const fields: string[] = snapshot.snapshot.meta.node_fields;
  const types: string[] = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const [t, n, s] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const out = new Map<string, { count: number; bytes: number }>();
  const nodes: number[] = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const kind = `${types[nodes[i + t]]}:${String(snapshot.strings[nodes[i + n]]).slice(0, 60)}`;
    const entry = out.get(kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[i + s];
    out.set(kind, entry);
  }
  return out;
}

const where = positionals[0] ?? "127.0.0.1:9229";
const targets = await (await fetch(`http://${where}/json/list`)).json() as { webSocketDebuggerUrl: string }[];
const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  socket.onopen = resolve;
  socket.onerror = reject;
});
let id = 0;
const pending = new Map<number, (result: Record<string, unknown>) => void>();
const chunks: string[] = [];
socket.onmessage = (event) => {
  const message = JSON.parse(event.data);
  if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
  else pending.get(message.id)?.(message.result ?? message.error);
};
const call = (method: string, params: Record<string, unknown> = {}) =>
  new Promise<Record<string, unknown>>((resolve) => {
    pending.set(++id, resolve);
    socket.send(JSON.stringify({ id, method, params }));
  });
await call("HeapProfiler.enable");
await call("HeapProfiler.collectGarbage");
const usage = await call("Runtime.getHeapUsage");
if (values.snapshot) {
  await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  await Deno.writeTextFile(values.snapshot, chunks.join(""));
}
console.log(JSON.stringify({ used: usage.usedSize, total: usage.totalSize }));
socket.close();
