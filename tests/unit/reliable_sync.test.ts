/**
 * The reliable mode's engine end to end in memory: two or three `ReliableSync`s on a simulated link (seeded
 * loss, duplication and reordering), a test clock, each one's "kernel table" the sessions its decode handed
 * over. Late start, restart mid-stream, losses beyond the resend buffer: every table converges with no command,
 * and "in sync" is never claimed while a table lacks a session its peer sent more than the stale time (2.5
 * heartbeats) ago: what was lost more recently, no receiver can know of before it hears the sender again.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { ReliableSync } from "../../lib/reliable/sync.ts";
import type { ReliableSettings } from "../../lib/config/types.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { Stats } from "../../lib/stats.ts";
import { sessionBatch } from "../helpers/kernel_messages.ts";
import { FRAME_TYPE } from "../../lib/reliable/frame.ts";
import { COALESCED_MAX_BYTES } from "../../lib/relay.ts";

const SETTINGS: ReliableSettings = {
  mode: "reliable",
  trackWeight: -50,
  heartbeatMs: 1000,
  resendBuffer: 64,
  sessionCache: 100_000,
  replayRate: 100_000,
};

/** A simulated daemon: its engine and the sessions its kernel received. */
interface Node {
  name: string;
  engine: ReliableSync;
  table: Set<number>;
  inbox: Uint8Array[];
  up: boolean;
}

class Net {
  now = 0;
  readonly nodes: Node[] = [];
  #seed = 12345;
  loss = 0;
  duplicate = 0;
  reorder = 0;
  /** When each session was first sent by a kernel. */
  readonly sentAt = new Map<number, number>();
  /** The largest REPLAY frame sent. */
  largestReplay = 0;
  /** Datagrams held back one step (reordering). */
  readonly #late: [Node, Uint8Array][] = [];

  random(): number {
    this.#seed ^= this.#seed << 13;
    this.#seed ^= this.#seed >>> 17;
    this.#seed ^= this.#seed << 5;
    return (this.#seed >>> 0) / 2 ** 32;
  }

  start(name: string): Node {
    const node: Node = {
      name,
      engine: new ReliableSync(SETTINGS, {
        stats: new Stats(),
        log: new MemoryLogger(),
        format: () => "C",
        now: () => this.now,
      }),
      table: new Set(),
      inbox: [],
      up: true,
    };
    this.nodes.push(node);
    node.engine.start({ send: (d) => Promise.resolve(this.#send(node, d)), backlog: () => 0 }, false);
    return node;
  }

  async stop(node: Node): Promise<void> {
    node.up = false;
    await node.engine.stop();
  }

  #send(from: Node, datagram: Uint8Array): boolean {
    if (datagram[5] === FRAME_TYPE.REPLAY) this.largestReplay = Math.max(this.largestReplay, datagram.length);
    for (const to of this.nodes) {
      if (to === from || !to.up) continue;
      if (this.random() < this.loss) continue;
      const copies = this.random() < this.duplicate ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        if (this.random() < this.reorder) this.#late.push([to, datagram]);
        else to.inbox.push(datagram);
      }
    }
    return true;
  }

  /** A kernel batch of sessions first … first+count-1 at `node`. */
  kernel(node: Node, first: number, count: number): void {
    const payload = sessionBatch(first, count);
    for (let n = first; n < first + count; n++) {
      node.table.add(n);
      if (!this.sentAt.has(n)) this.sentAt.set(n, this.now);
    }
    this.#send(node, node.engine.encode(payload));
  }

  /** One 20-ms step: deliveries, then every engine's timers; lets the replay loops run. */
  async step(): Promise<void> {
    this.now += 20;
    const late = this.#late.splice(0);
    for (const node of this.nodes.filter((n) => n.up)) {
      for (const datagram of node.inbox.splice(0)) this.#deliver(node, datagram);
    }
    for (const [node, datagram] of late) if (node.up) this.#deliver(node, datagram);
    for (const node of this.nodes) if (node.up) node.engine.tick();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  #deliver(node: Node, datagram: Uint8Array): void {
    const result = node.engine.decode(datagram, "C");
    if (result.ok !== true) return;
    for (let at = 0; at + 40 <= result.payload.length; at += 40) {
      node.table.add((result.payload[at + 18] << 8) | result.payload[at + 19]);
    }
  }

  async steps(count: number, check?: () => void): Promise<void> {
    for (let i = 0; i < count; i++) {
      await this.step();
      check?.();
    }
  }
}

/** Sessions of `others` that `node` lacks (only those sent at or before `before`, when given). */
function lacks(node: Node, others: Node[], net?: Net, before?: number): number[] {
  const out: number[] = [];
  for (const other of others) {
    for (const n of other.table) {
      if (before !== undefined && net!.sentAt.get(n)! > before) continue;
      if (!node.table.has(n)) out.push(n);
    }
  }
  return out;
}

/** The stale time plus one step of reordering. */
const UNKNOWABLE_MS = 2.5 * SETTINGS.heartbeatMs + 20;

/** A check run at every step: in sync ⇒ nothing knowable missing. */
function claimsOnlyWhatItHas(net: Net, node: Node, others: Node[]): () => void {
  return () => {
    if (!node.engine.inSync) return;
    const missing = lacks(node, others, net, net.now - UNKNOWABLE_MS);
    assertEquals(missing, [], `${node.name} in sync at ${net.now} ms but lacking`);
  };
}

Deno.test("engine: late start, lossy stream, restart, a cut beyond the resend buffer — tables converge", async () => {
  const net = new Net();
  const a = net.start("a");
  for (let i = 0; i < 20; i++) net.kernel(a, i * 10, 10);
  await net.steps(10);

  // B starts late: no command, it gets A's 200 sessions and says in sync only then.
  const b = net.start("b");
  const checkB = (node: Node) => claimsOnlyWhatItHas(net, node, [a]);
  await net.steps(200, checkB(b));
  assertEquals(lacks(b, [a]), []);
  assert(b.engine.inSync, "B in sync");

  // A lossy, duplicating, reordering link while A's kernel streams 300 more; B's kernel sends 20.
  Object.assign(net, { loss: 0.05, duplicate: 0.01, reorder: 0.1 });
  for (let i = 0; i < 30; i++) {
    net.kernel(a, 200 + i * 10, 10);
    if (i % 10 === 0) net.kernel(b, 1000 + i, 5);
    await net.steps(2);
  }
  await net.steps(300, checkB(b));
  assertEquals(lacks(b, [a]), []);
  assertEquals(lacks(a, [b]), []);

  // B restarts mid-stream (a new sender id): the new B converges and A counts it.
  await net.stop(b);
  for (let i = 0; i < 10; i++) net.kernel(a, 500 + i * 10, 10);
  const b2 = net.start("b2");
  for (let i = 0; i < 10; i++) {
    net.kernel(a, 600 + i * 10, 10);
    await net.steps(2, checkB(b2));
  }
  await net.steps(400, checkB(b2));
  assertEquals(lacks(b2, [a]), [], "the restarted B holds every session of A");
  assert(b2.engine.inSync);

  // A → everyone cut while A sends 100 datagrams (the resend buffer keeps 64): B2 resyncs.
  net.loss = 1;
  for (let i = 0; i < 100; i++) net.kernel(a, 700 + i, 1);
  await net.steps(20);
  net.loss = 0.05;
  await net.steps(400, checkB(b2));
  assertEquals(lacks(b2, [a]), []);
  assert(b2.engine.inSync);
  const status = b2.engine.status() as { peers: Record<string, number>[] };
  const peer = status.peers.find((p) => p.replaysCompleted !== undefined)!;
  assert(peer.lost > 0, JSON.stringify(peer));
  assert(peer.replaysCompleted >= 2, JSON.stringify(peer));
  assertEquals(peer.gaps, peer.reordered + peer.recovered + peer.lost + peer.missing);
  for (const node of net.nodes) if (node.up) await node.engine.stop();
});

Deno.test("engine: three daemons, one started late, learns every daemon's sessions from each", async () => {
  const net = new Net();
  Object.assign(net, { loss: 0.05, duplicate: 0.01, reorder: 0.1 });
  const a = net.start("a");
  const b = net.start("b");
  await net.steps(10);
  for (let i = 0; i < 10; i++) {
    net.kernel(a, i * 10, 10);
    net.kernel(b, 2000 + i * 10, 10);
    await net.steps(1);
  }
  await net.steps(200);
  const c = net.start("c");
  await net.steps(400, claimsOnlyWhatItHas(net, c, [a, b]));
  assertEquals(lacks(c, [a, b]), []);
  assert(c.engine.inSync && a.engine.inSync && b.engine.inSync);
  for (const node of net.nodes) await node.engine.stop();
});

Deno.test("engine: a REPLAY frame is no larger than a kernel batch can be (one IPv6 packet at MTU 1500)", async () => {
  const net = new Net();
  const a = net.start("a");
  await net.steps(10);
  for (let i = 0; i < 10; i++) net.kernel(a, i * 36, 36);
  await net.steps(10);
  const b = net.start("b");
  await net.steps(200);
  assertEquals(lacks(b, [a]), []);
  assert(
    net.largestReplay > 0 && net.largestReplay <= COALESCED_MAX_BYTES,
    `REPLAY of ${net.largestReplay} bytes`,
  );
  for (const node of net.nodes) await node.engine.stop();
});

Deno.test("engine: a plain datagram in a reliable group is dropped as net_unframed, with what to fix", () => {
  const engine = new ReliableSync(SETTINGS, {
    stats: new Stats(),
    log: new MemoryLogger(),
    format: () => "C",
  });
  const result = engine.decode(sessionBatch(1, 2), "C");
  assertEquals(result.ok, false);
  if (result.ok === false) {
    assertEquals(result.reason, "net_unframed");
    assert(result.detail.includes('set "mode": "reliable" on every daemon of the group'), result.detail);
  }
});
