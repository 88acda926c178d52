import { assert, assertEquals } from "../helpers/assert.ts";
import { COALESCED_MAX_BYTES, type KernelSide, type NetSide, Relay } from "../../lib/relay.ts";
import type { WireCodec } from "../../lib/wire.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import { Stats } from "../../lib/stats.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { AckGate } from "../../lib/kernel/ack_rule.ts";
import { pool4Table } from "../../lib/session/pool4_check.ts";
import { upstreamWire } from "../../lib/wire.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";
import type { SyncLink } from "../../lib/net/packet_fit.ts";
import { sessionBatch, sessionEntry } from "../helpers/kernel_messages.ts";
import { parsePool4Spec } from "../helpers/pool4_double.ts";

/** A codec that accepts datagrams whose first byte is 1 (one session per remaining byte). */
const testCodec: WireCodec = {
  name: "test",
  overhead: 0,
  encode: (payload) => payload,
  decode: (datagram) =>
    datagram[0] === 1
      ? { ok: true, payload: datagram, sessions: datagram.length - 1 }
      : { ok: false, reason: "net_bad_field", detail: "first byte is not 1" },
};

class FakeKernel implements KernelSide {
  format: SessionFormat | undefined = "C";
  readonly ackGate = new AckGate();
  added: Uint8Array[] = [];
  #emit?: (payload: Uint8Array, sessions: number) => void;
  #end?: () => void;
  addSessions(payload: Uint8Array): void {
    this.added.push(payload);
  }
  run(onBatch: (payload: Uint8Array, sessions: number) => void): Promise<void> {
    this.#emit = onBatch;
    return new Promise((resolve) => this.#end = resolve);
  }
  batch(payload: Uint8Array, sessions = 1): void {
    this.#emit!(payload, sessions);
  }
  close(): void {
    this.#end?.();
  }
}

class FakeNet implements NetSide {
  sent: Uint8Array[] = [];
  sentSessions: (number | undefined)[] = [];
  #incoming: Uint8Array[] = [];
  #wake?: () => void;
  #closed = false;
  sendGate: Promise<void> = Promise.resolve();
  async send(datagram: Uint8Array, sessions?: number): Promise<boolean> {
    const bytes = datagram.slice(); // what was asked to be sent
    await this.sendGate;
    assertEquals(datagram, bytes, "the datagram did not change while its send was in flight");
    this.sent.push(bytes);
    this.sentSessions.push(sessions);
    return true;
  }
  deliver(datagram: Uint8Array): void {
    this.#incoming.push(datagram);
    this.#wake?.();
  }
  async *receive(): AsyncIterable<Uint8Array> {
    while (true) {
      const next = this.#incoming.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("relay: batches go out verbatim; valid datagrams reach the kernel; bad ones are counted", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  const stats = new Stats();
  const relay = new Relay(kernel, net, testCodec, stats, new MemoryLogger());
  const done = relay.run();
  kernel.batch(new Uint8Array([9, 9, 9]));
  net.deliver(new Uint8Array([1, 2, 3]));
  net.deliver(new Uint8Array([7]));
  await tick();
  await tick();
  assertEquals(net.sent, [new Uint8Array([9, 9, 9])]);
  assertEquals(kernel.added, [new Uint8Array([1, 2, 3])]);
  assertEquals(stats.get("NET_RCVD_SESSIONS"), 2);
  assertEquals(stats.drops("net_bad_field"), 1);
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay: unknown kernel format drops datagrams with a counter", async () => {
  const kernel = new FakeKernel();
  kernel.format = undefined;
  const net = new FakeNet();
  const stats = new Stats();
  const log = new MemoryLogger();
  const done = new Relay(kernel, net, testCodec, stats, log).run();
  net.deliver(new Uint8Array([1, 2]));
  net.deliver(new Uint8Array([1, 2]));
  await tick();
  assertEquals(kernel.added.length, 0);
  assertEquals(stats.drops("net_format_unknown"), 2);
  assertEquals(log.lines.length, 1, "rate-limited: one line for two drops");
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay: the network queue is bounded and counts overflow", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  let open!: () => void;
  net.sendGate = new Promise((resolve) => open = resolve);
  const stats = new Stats();
  const done = new Relay(kernel, net, testCodec, stats, new MemoryLogger(), { netQueueCapacity: 2 }).run();
  await tick();
  kernel.batch(new Uint8Array([0]));
  await tick(); // the sender takes it and waits on the gate
  for (let i = 1; i < 5; i++) kernel.batch(new Uint8Array([i]));
  // One is in flight in the sender, two wait in the queue, two overflow.
  assertEquals(stats.drops("kernel_queue_full"), 2);
  open();
  await tick();
  await tick();
  assertEquals(
    net.sent,
    [Uint8Array.of(0), Uint8Array.of(1, 2)],
    "the two queued behind the first leave together",
  );
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay: above 3/4 of the queue the kernel's ACKs are held until it drains under 1/4", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  let open!: () => void;
  net.sendGate = new Promise((resolve) => open = resolve);
  const stats = new Stats();
  const done = new Relay(kernel, net, testCodec, stats, new MemoryLogger(), { netQueueCapacity: 8 }).run();
  await tick();
  kernel.batch(new Uint8Array([0]));
  await tick(); // in flight, blocked on the gate
  for (let i = 1; i <= 5; i++) kernel.batch(new Uint8Array([i]));
  assertEquals(kernel.ackGate.held, false, "5 queued < 6 (3/4 of 8): no hold");
  kernel.batch(new Uint8Array([6]));
  assertEquals(kernel.ackGate.held, true, "6 queued: hold the ACKs");
  let released = false;
  kernel.ackGate.whenReleased()!.then(() => released = true);
  open();
  for (let i = 0; i < 10 && !released; i++) await tick();
  assertEquals(released, true);
  assertEquals(kernel.ackGate.held, false, "released once the queue is at most 2 (1/4 of 8)");
  assertEquals(stats.drops("kernel_queue_full"), 0);
  kernel.close();
  net.close();
  await done;
  assertEquals(net.sent.flatMap((d) => [...d]), [0, 1, 2, 3, 4, 5, 6]);
});

Deno.test("relay: a channel that fails ends the relay with its error (no half-open relay)", async () => {
  const kernel = new FakeKernel();
  const failing: KernelSide = {
    format: "C",
    ackGate: new AckGate(),
    addSessions: () => {},
    run: () => Promise.reject(new Error("recv failed: Bad file descriptor")),
  };
  const net = new FakeNet();
  let message = "";
  try {
    await new Relay(failing, net, testCodec, new Stats(), new MemoryLogger()).run();
  } catch (error) {
    message = (error as Error).message;
  }
  assertEquals(message, "recv failed: Bad file descriptor");
  kernel.close();
  net.close();
});

Deno.test("relay: batches queued behind a send leave as one datagram of whole batches, up to the kernel's batch size", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  let open!: () => void;
  net.sendGate = new Promise((resolve) => open = resolve);
  const stats = new Stats();
  const done = new Relay(kernel, net, testCodec, stats, new MemoryLogger()).run();
  await tick();
  kernel.batch(Uint8Array.of(0));
  await tick(); // in flight, blocked on the gate
  const big = new Uint8Array(COALESCED_MAX_BYTES - 2).fill(5);
  kernel.batch(Uint8Array.of(1));
  kernel.batch(Uint8Array.of(2));
  kernel.batch(big); // 1 + 1 + (max - 2) = max: still one datagram
  kernel.batch(Uint8Array.of(3)); // would pass the max: the next datagram
  open();
  for (let i = 0; i < 5; i++) await tick();
  assertEquals(net.sent.map((d) => d.length), [1, COALESCED_MAX_BYTES, 1]);
  assertEquals([...net.sent[1].subarray(0, 3)], [1, 2, 5]);
  assertEquals(net.sent[2], Uint8Array.of(3));
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay: each batch is copied at once (the kernel side may reuse its buffer after the call)", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  let open!: () => void;
  net.sendGate = new Promise((resolve) => open = resolve);
  const done = new Relay(kernel, net, testCodec, new Stats(), new MemoryLogger()).run();
  await tick();
  const reused = new Uint8Array(4);
  for (const [i, sent] of [[0, false], [1, true], [2, true], [3, false]] as const) {
    reused.fill(i);
    kernel.batch(reused); // the first goes in flight; the others queue behind it, in one datagram
    reused.fill(0xee); // what the transport's next datagram would do to the view
    if (!sent) await tick();
  }
  open();
  for (let i = 0; i < 5; i++) await tick();
  assertEquals(net.sent, [
    new Uint8Array(4).fill(0),
    Uint8Array.of(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
  ]);
  kernel.close();
  net.close();
  await done;
});

Deno.test('relay with "check pool4": sessions outside pool4 never reach the kernel; every one is counted', async () => {
  const kernel = new FakeKernel(); // format C
  const net = new FakeNet();
  const stats = new Stats();
  const log = new MemoryLogger();
  // sessionOf(n): UDP, src4 192.0.2.1#(2000+n); pool4 UDP holds ports 2000–2009 only.
  const table = pool4Table(parsePool4Spec("udp:192.0.2.1/32:2000-2009"));
  const done = new Relay(kernel, net, upstreamWire, stats, log, { pool4: () => table }).run();
  net.deliver(sessionBatch(0, 3)); // all inside
  net.deliver(concatBytes([sessionEntry(20), sessionEntry(5), sessionEntry(21)])); // one inside of three
  net.deliver(sessionBatch(30, 4)); // all outside: the datagram is dropped
  await tick();
  await tick();
  assertEquals(kernel.added, [sessionBatch(0, 3), sessionEntry(5)]);
  assertEquals(stats.get("NET_RCVD_SESSIONS"), 4);
  assertEquals(stats.get("NET_SESSIONS_OUTSIDE_POOL4"), 6);
  assertEquals(stats.drops("net_outside_pool4"), 1);
  assertEquals(log.lines, [
    "warn: dropped 2 of 3 sessions outside the local pool4 (first: UDP 192.0.2.1#2020); the others go to the kernel",
    "warn: dropped (net_outside_pool4): 4 of 4 sessions outside the local pool4 (first: UDP 192.0.2.1#2030)",
  ]);
  kernel.close();
  net.close();
  await done;
});

/** A framed wire as the keyed one: 16 bytes of header (here: 0xf1) before the payload, 48 of trailer (0xf2) after. */
const keyedCodec: WireCodec = {
  name: "keyed-test",
  overhead: 64,
  encode: (payload) => concatBytes([new Uint8Array(16).fill(0xf1), payload, new Uint8Array(48).fill(0xf2)]),
  decode: () => ({ ok: false, reason: "net_bad_field", detail: "not used" }),
};
const ETH0: SyncLink = { name: "eth0", mtu: 1500, measured: true, family: 6 };

Deno.test("relay, framed wire: a batch that would not fit one packet leaves as frames of whole entries", async () => {
  const kernel = new FakeKernel(); // format C: 40-byte entries
  const net = new FakeNet();
  const stats = new Stats();
  const log = new MemoryLogger();
  const done = new Relay(kernel, net, keyedCodec, stats, log, { link: ETH0, instance: "nat64" }).run();
  const batch = sessionBatch(0, 36); // 1 440 bytes; framed 1 504 > 1 452 (one IPv6 packet at MTU 1 500)
  kernel.batch(batch, 36);
  await tick();
  kernel.batch(sessionBatch(100, 34), 34); // 1 360 bytes: framed 1 424, fits
  await tick();
  kernel.batch(sessionBatch(200, 36), 36);
  for (let i = 0; i < 4; i++) await tick();
  assertEquals(net.sent.map((d) => d.length), [1360 + 64, 80 + 64, 1360 + 64, 1360 + 64, 80 + 64]);
  assertEquals(net.sentSessions, [34, 2, 34, 34, 2]);
  assertEquals(net.sent[0].subarray(16, 16 + 1360), sessionBatch(0, 34));
  assertEquals(net.sent[1].subarray(16, 16 + 80), sessionBatch(34, 2));
  assertEquals(net.sent[2].subarray(16, 16 + 1360), sessionBatch(100, 34));
  assertEquals(stats.get("NET_BATCHES_SPLIT"), 2);
  // One line (rate-limited: an hour) with what to set.
  const warned = log.lines.filter((l) => l.startsWith("warn"));
  assertEquals(warned.length, 1, log.lines.join("\n"));
  assert(warned[0].includes("1504 framed") && warned[0].includes("eth0 (MTU 1500)"), warned[0]);
  assert(warned[0].includes("jool -i nat64 global update ss-max-sessions-per-packet 34"), warned[0]);
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay, framed wire: under load, the rest of a cut batch heads the next frame, so frames stay full", async () => {
  const kernel = new FakeKernel();
  const net = new FakeNet();
  let open!: () => void;
  net.sendGate = new Promise((resolve) => open = resolve);
  const stats = new Stats();
  const done = new Relay(kernel, net, keyedCodec, stats, new MemoryLogger(), { link: ETH0 }).run();
  await tick();
  const batches = [sessionBatch(0, 36), sessionBatch(100, 36), sessionBatch(200, 36)];
  kernel.batch(batches[0], 36);
  await tick(); // its first 34 in flight, blocked on the gate; its last 2 wait
  kernel.batch(batches[1], 36);
  kernel.batch(batches[2], 36);
  open();
  for (let i = 0; i < 6; i++) await tick();
  assertEquals(net.sentSessions, [34, 34, 34, 6]); // 2 + 32, then 4 + 30, then the last 6
  assertEquals(net.sent.map((d) => d.length - 64), [1360, 1360, 1360, 240]);
  const entries = concatBytes(net.sent.map((d) => d.subarray(16, d.length - 48)));
  assertEquals(entries, concatBytes(batches), "every session once, in order, byte for byte");
  assertEquals(stats.get("NET_BATCHES_SPLIT"), 3);
  kernel.close();
  net.close();
  await done;
});

Deno.test("relay, upstream wire: a batch goes verbatim whatever the link; one too large for it is logged", async () => {
  for (const [mtu, warnings] of [[1500, 0], [1400, 1]] as const) {
    const kernel = new FakeKernel();
    const net = new FakeNet();
    const stats = new Stats();
    const log = new MemoryLogger();
    const done = new Relay(kernel, net, upstreamWire, stats, log, { link: { ...ETH0, mtu } }).run();
    const batch = sessionBatch(0, 36);
    kernel.batch(batch, 36);
    for (let i = 0; i < 3; i++) await tick();
    assertEquals(net.sent.length, 1);
    assertEquals(net.sent[0], batch, "the kernel's bytes, unframed and unsplit");
    assertEquals(stats.get("NET_BATCHES_SPLIT"), 0);
    const warned = log.lines.filter((l) => l.startsWith("warn"));
    assertEquals(warned.length, warnings, log.lines.join("\n"));
    if (warnings) {
      assert(warned[0].includes("IP fragments"), warned[0]);
      assert(warned[0].includes("ss-max-sessions-per-packet 33"), warned[0]); // (1400 − 48) / 40
    }
    kernel.close();
    net.close();
    await done;
  }
});

Deno.test("relay, framed wire: queued batches coalesce only up to what fits one packet once framed", async () => {
  for (const [codec, expected] of [[keyedCodec, [0, 1200, 200]], [upstreamWire, [0, 1400]]] as const) {
    const kernel = new FakeKernel();
    const net = new FakeNet();
    let open!: () => void;
    net.sendGate = new Promise((resolve) => open = resolve);
    const done = new Relay(kernel, net, codec, new Stats(), new MemoryLogger(), { link: ETH0 }).run();
    await tick();
    kernel.batch(new Uint8Array(0), 0);
    await tick(); // in flight, blocked on the gate
    kernel.batch(sessionBatch(0, 10), 10);
    kernel.batch(sessionBatch(10, 20), 20);
    kernel.batch(sessionBatch(30, 5), 5); // 35 entries, 1 400 bytes: within 1 452, beyond 1 388
    open();
    for (let i = 0; i < 5; i++) await tick();
    assertEquals(net.sent.map((d) => d.length - codec.overhead), expected);
    kernel.close();
    net.close();
    await done;
  }
});
