/**
 * The kernel channel over the kernel double (tests/helpers/kernel_double.ts: the real kernel thread on a socket
 * pair): frames in as kernel multicasts, frames out as the daemon's requests. No root, no Jool.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { KernelChannel } from "../../lib/kernel/channel.ts";
import { DOUBLE_FAMILY_ID, encodeFrame, FrameReader, openKernelDouble } from "../helpers/kernel_double.ts";
import { AckGate } from "../../lib/kernel/ack_rule.ts";
import type { KernelDatagram, KernelTransport } from "../../lib/kernel/transport.ts";
import {
  encodeJooldAdd,
  JNLAR_SESSION_ENTRIES,
  JNLOP_JOOLD_ACK,
  JNLOP_JOOLD_ADD,
} from "../../lib/jool/messages.ts";
import type { JoolVersion } from "../../lib/jool/header.ts";
import { NLA_F_NESTED, NLMSG_HDRLEN, readNetlinkHeader } from "../../lib/jool/netlink.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { errorReply, kernelMessage, multicastBatch, sessionEntry } from "../helpers/kernel_messages.ts";
import { Stats } from "../../lib/stats.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";

const V4_1_13: JoolVersion = { major: 4, minor: 1, revision: 13, dev: 0 };

const entry = (n: number) => sessionEntry(n);
const batch = multicastBatch;

/** The double on in-memory pipes. */
class Rig {
  readonly stats = new Stats();
  readonly log = new MemoryLogger();
  readonly sent: Uint8Array[] = [];
  transport!: KernelTransport;
  readonly #stdin = new TransformStream<Uint8Array, Uint8Array>();
  readonly #input = this.#stdin.writable.getWriter();
  #waiters: (() => void)[] = [];

  static async open(instance = "default"): Promise<Rig> {
    const rig = new Rig();
    const reader = new FrameReader();
    const stdout = new WritableStream<Uint8Array>({
      write: (chunk) => {
        rig.sent.push(...reader.push(chunk));
        for (const w of rig.#waiters.splice(0)) w();
      },
    });
    rig.transport = await openKernelDouble({
      version: "4.1.13",
      instance,
      stdin: rig.#stdin.readable,
      stdout,
    });
    return rig;
  }

  inject(datagram: Uint8Array): Promise<void> {
    return this.#input.write(encodeFrame(datagram));
  }

  /**
   * Waits for `condition`, checked at each frame out and every 10 ms (batches arrive without a frame); 10 s at
   * most.
   */
  async until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000; // a failed expectation fails the test instead of hanging it
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`not within 10 s: ${condition}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, 10);
      });
      clearTimeout(timer);
    }
  }

  /** Lets the kernel thread and queued stream work run (for checks that something did not happen). */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  commands(): number[] {
    return this.sent.map((m) => m[16]);
  }
}

async function openChannel(rig: Rig, instance = "default", kernelVersion: JoolVersion | null = V4_1_13) {
  return await KernelChannel.open({
    instance,
    transport: rig.transport,
    stats: rig.stats,
    log: rig.log,
    kernelVersion: kernelVersion ?? undefined,
  });
}

Deno.test("kernel channel + double: a batch reaches onBatch and is ACKed once", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig);
  assertEquals(rig.sent.length, 0, "the probe stays inside the double");
  assertEquals(channel.format, "C");
  const payload = new Uint8Array([...entry(1), ...entry(2)]);
  const got: [Uint8Array, number][] = [];
  const running = channel.run((p, n) => got.push([p.slice(), n])); // a view valid during the call
  await rig.inject(batch(payload));
  await rig.until(() => rig.sent.length >= 1);
  await rig.until(() => got.length >= 1);
  await rig.settle();
  assertEquals(got, [[payload, 2]]);
  assertEquals(rig.commands(), [JNLOP_JOOLD_ACK]);
  const ack = rig.sent[0];
  assertEquals(ack.length, 48);
  const nl = readNetlinkHeader(ack);
  assertEquals([nl.type, nl.flags, nl.pid], [DOUBLE_FAMILY_ID, 1, Deno.pid]);
  assertEquals([...ack.subarray(17, 20)], [1, 0, 0], "genl version 1, reserved 0");
  assertEquals([...ack.subarray(20, 32)], [0x6a, 0x6f, 0x6f, 0x6c, 4, 1, 13, 0, 2, 0, 0, 0]);
  assertEquals(rig.stats.get("KERNEL_RCVD_BATCHES"), 1);
  assertEquals(rig.stats.get("KERNEL_RCVD_SESSIONS"), 2);
  assertEquals(rig.stats.get("KERNEL_RCVD_BYTES"), 80);
  assertEquals(rig.stats.get("KERNEL_ACKS_SENT"), 1);
  await channel.close();
  await running;
});

Deno.test("kernel channel + double: back-pressure holds the ACK (and the batch) until released", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig);
  const got: number[] = [];
  const running = channel.run((_, n) => got.push(n));
  channel.ackGate.hold();
  await rig.inject(batch(new Uint8Array([...entry(1)])));
  await rig.settle();
  assertEquals(
    rig.sent.length,
    0,
    "no ACK while the consumer is saturated: not on arrival, not after parsing",
  );
  assertEquals(got, []);
  channel.ackGate.release();
  await rig.until(() => rig.sent.length >= 1);
  assertEquals(rig.commands(), [JNLOP_JOOLD_ACK]);
  assertEquals(got, [1]);
  assertEquals(rig.stats.get("KERNEL_ACKS_SENT"), 1);
  await channel.close();
  await running;
});

Deno.test("kernel channel + double: addSessions writes a JOOLD_ADD byte-identical to the codec's", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig);
  const payload = new Uint8Array([...entry(3)]);
  channel.addSessions(payload, 1);
  await rig.until(() => rig.sent.length >= 1);
  const sent = rig.sent[0];
  assertEquals(sent[16], JNLOP_JOOLD_ADD);
  const nl = readNetlinkHeader(sent);
  const expected = encodeJooldAdd({
    familyId: DOUBLE_FAMILY_ID,
    pid: Deno.pid,
    seq: nl.seq,
    version: V4_1_13,
    instance: "default",
  }, payload);
  assertEquals(sent, expected);
  assertEquals(sent.length, 92);
  assertEquals([rig.stats.get("KERNEL_SENT_PKTS"), rig.stats.get("KERNEL_SENT_BYTES")], [1, 40]);
  assertEquals(rig.stats.get("KERNEL_SENT_SESSIONS"), 1);
  await channel.close();
});

Deno.test("kernel channel + double: other instances are counted, not forwarded, not ACKed", async () => {
  const rig = await Rig.open("Alpha");
  const channel = await openChannel(rig, "Alpha");
  const got: Uint8Array[] = [];
  const running = channel.run((p) => got.push(p.slice()));
  await rig.inject(batch(entry(4), "beta"));
  await rig.inject(batch(entry(5), "ALPHA")); // case-insensitive match, as upstream
  await rig.until(() => rig.sent.length >= 1);
  await rig.settle();
  assertEquals(got.length, 1);
  assertEquals(got[0], entry(5));
  assertEquals(rig.commands(), [JNLOP_JOOLD_ACK]);
  assertEquals(rig.stats.get("KERNEL_OTHER_INSTANCE_BATCHES"), 1);
  await channel.close();
  await running;
});

Deno.test("kernel channel + double: error replies are counted, logged once, never ACKed", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig);
  const running = channel.run(() => {
    throw new Error("no batch expected");
  });
  for (let i = 0; i < 3; i++) {
    await rig.inject(errorReply(22, "Session sync is disabled on this instance.", Deno.pid));
  }
  await rig.inject(errorReply(3, "This namespace lacks an instance named 'default'.", Deno.pid));
  await rig.settle();
  assertEquals(rig.sent.length, 0);
  assertEquals(rig.stats.get("KERNEL_ERROR_REPLIES"), 4);
  assertEquals(rig.stats.get("KERNEL_ADDS_REJECTED_SS_DISABLED"), 3);
  assertEquals(rig.stats.snapshot().kernelErrors, { "22": 3, "3": 1 });
  assertEquals(rig.log.lines.filter((l) => l.startsWith("error:")).length, 2, rig.log.lines.join("\n"));
  await channel.close();
  await running;
});

Deno.test("kernel channel + double: invalid kernel messages are dropped by reason and ACKed", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig);
  const running = channel.run(() => {
    throw new Error("no batch expected");
  });
  const noContainer = kernelMessage({}, [{ type: 3, payload: new Uint8Array(4) }]);
  const badMagic = batch(entry(1));
  badMagic[20] = 0x4a;
  const truncated = batch(entry(1)).subarray(0, 40);
  new DataView(truncated.buffer, truncated.byteOffset).setUint32(0, 40, true);
  await rig.inject(noContainer);
  await rig.inject(badMagic);
  await rig.inject(truncated);
  await rig.inject(batch(entry(1), "default", [4, 2, 0, 0])); // another major.minor: dropped, not ACKed
  await rig.inject(batch(entry(1), "default", [4, 1, 255, 5])); // the 4.2 rc: dropped, not ACKed
  await rig.until(() => rig.sent.length >= 3);
  await rig.settle();
  assertEquals(rig.commands(), [JNLOP_JOOLD_ACK, JNLOP_JOOLD_ACK, JNLOP_JOOLD_ACK]);
  assertEquals(rig.stats.drops("kernel_no_container"), 1);
  assertEquals(rig.stats.drops("kernel_bad_message"), 2);
  assertEquals(rig.stats.drops("kernel_version_mismatch"), 2);
  await channel.close();
  await running;
});

Deno.test("kernel channel: without /sys the format is learnt from the first multicast; a contradiction is trusted", async () => {
  const rig = await Rig.open();
  const channel = await openChannel(rig, "default", null);
  assertEquals(channel.format, undefined);
  assertEquals(channel.kernelVersion, undefined);
  // Requests before any multicast announce 4.1.15.
  channel.advertise();
  await rig.until(() => rig.sent.length >= 1);
  assertEquals([...rig.sent[0].subarray(24, 28)], [4, 1, 15, 0]);
  const running = channel.run(() => {});
  await rig.inject(batch(entry(1), "default", [4, 1, 14, 0]));
  await rig.until(() => rig.sent.length >= 2);
  await rig.settle();
  assertEquals(channel.format, "C");
  assertEquals(channel.kernelVersion, { major: 4, minor: 1, revision: 14, dev: 0 });
  assertEquals([...rig.sent[1].subarray(24, 28)], [4, 1, 14, 0], "the ACK mirrors the kernel's version");
  // A 4.1.12 kernel's multicast (format B, 52-byte entries) contradicts: warn, trust it.
  const b = new Uint8Array(52);
  new DataView(b.buffer).setUint16(0, 52, true);
  new DataView(b.buffer).setUint16(2, 1, true);
  await rig.inject(batch(b, "default", [4, 1, 12, 0]));
  await rig.until(() => rig.sent.length >= 3);
  await rig.settle();
  assertEquals(channel.format, "B");
  assert(
    rig.log.lines.some((l) => l.startsWith("warn:") && l.includes("format B")),
    rig.log.lines.join("\n"),
  );
  await channel.close();
  await running;
});

Deno.test("kernel channel: probe answers map to exit codes", async () => {
  const cases: [number, number][] = [[3, EXIT.INSTANCE_ABSENT], [1, EXIT.PERMISSION], [22, EXIT.RUNTIME]];
  for (const [code, exit] of cases) {
    const transport = scriptedTransport((request) =>
      errorReply(code, "nope", readNetlinkHeader(request).pid)
    );
    const error = await KernelChannel.open({
      instance: "default",
      transport,
      stats: new Stats(),
      log: new MemoryLogger(),
    }).then(() => undefined, (e) => e);
    assert(error instanceof JooldError, String(error));
    assertEquals(error.exitCode, exit, error.message);
    if (code === 3) {
      assertEquals(
        error.message,
        "the instance 'default' does not exist in this network namespace; create it with `jool instance add`",
      );
    }
  }
  // ss-enabled off: opens, with a warning.
  const log = new MemoryLogger();
  const off = scriptedTransport((request) => {
    const reply = kernelMessage({ seq: readNetlinkHeader(request).seq, pid: 9 }, [{
      type: 27,
      payload: Uint8Array.of(0),
    }]);
    return reply;
  });
  await KernelChannel.open({ instance: "default", transport: off, stats: new Stats(), log });
  assert(log.lines.some((l) => l.startsWith("warn:") && l.includes("ss-enabled")), log.lines.join("\n"));
});

/** A transport that yields datagrams as the kernel thread hands them over, each marked ACKed on arrival or not. */
class HandOffTransport implements KernelTransport {
  readonly familyId = DOUBLE_FAMILY_ID;
  readonly localPort = 4242;
  readonly ackGate = new AckGate();
  readonly log: string[] = [];
  #queue: KernelDatagram[] = [];
  #wake?: () => void;
  #closed = false;
  send(message: Uint8Array): void {
    this.log.push(`send cmd ${message[16]}`);
  }
  push(...datagrams: KernelDatagram[]): void {
    this.#queue.push(...datagrams);
    this.#wake?.();
  }
  async *receive(): AsyncIterable<KernelDatagram> {
    while (!this.#closed) {
      const next = this.#queue.shift();
      if (next) yield next;
      else await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }
  close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    return Promise.resolve();
  }
}

Deno.test("kernel channel: what the thread ACKed is counted, never ACKed again; the rest per the ACK rule", async () => {
  const transport = new HandOffTransport();
  const stats = new Stats();
  const channel = await KernelChannel.open({
    instance: "default",
    transport,
    stats,
    log: new MemoryLogger(),
    kernelVersion: V4_1_13,
    probe: false,
  });
  const running = channel.run((_, n) => transport.log.push(`batch of ${n}`));
  const unusable = kernelMessage({}, [{ type: 3, payload: new Uint8Array(4) }]); // ours, no container
  transport.push(
    { bytes: batch(entry(1)), acked: true },
    { bytes: batch(entry(9), "nat64-b"), acked: false },
    { bytes: batch(new Uint8Array([...entry(2), ...entry(3)])), acked: false }, // e.g. its ACK send failed
    { bytes: unusable, acked: false },
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(transport.log, [
    "batch of 1", // ACKed on arrival by the thread
    `send cmd ${JNLOP_JOOLD_ACK}`, // not ACKed by the thread: the channel ACKs before processing
    "batch of 2",
    `send cmd ${JNLOP_JOOLD_ACK}`, // an unusable message of ours (lib/kernel/ack_rule.ts rule 1)
  ]);
  assertEquals(stats.get("KERNEL_ACKS_SENT"), 3);
  assertEquals(stats.get("KERNEL_OTHER_INSTANCE_BATCHES"), 1);
  await channel.close();
  await running;
});

Deno.test("kernel channel: batches the thread ACKed come out exactly as through the full parse, odd ones included", async () => {
  const container = NLA_F_NESTED | JNLAR_SESSION_ENTRIES;
  const entries = (...ns: number[]) => new Uint8Array(ns.flatMap((n) => [...entry(n)]));
  const withTrailing = (bytes: Uint8Array) => Uint8Array.of(...bytes, 0, 0); // 2 bytes after the message
  const malformed = entries(7);
  malformed[0] = 0xff; // the entry's nla_len overruns the container
  const datagrams = [
    batch(entry(1)),
    batch(entries(2, 3, 4)),
    batch(entries(5, 6), "default", [4, 1, 12, 0]), // another version: learnt, with a warning
    batch(entry(7), "DEFAULT", [4, 1, 13, 0]), // back, and the instance case-folded
    kernelMessage({}, [{ type: container, payload: entry(8) }, { type: 3, payload: new Uint8Array(4) }]),
    withTrailing(batch(entry(9))),
    batch(new Uint8Array(0)), // no session
    batch(malformed),
    batch(sessionEntry(10, "B")), // entries of another format: trusted, with a warning
    batch(sessionEntry(11, "B")),
    batch(entry(12)),
  ];
  /** Runs `datagrams` through a channel, each marked `acked`; what came out, and the counters. */
  const through = async (acked: boolean) => {
    const transport = new HandOffTransport();
    const stats = new Stats();
    const log = new MemoryLogger();
    const channel = await KernelChannel.open({
      instance: "default",
      transport,
      stats,
      log,
      kernelVersion: V4_1_13,
      probe: false,
    });
    const batches: [number[], number][] = [];
    const running = channel.run((payload, n) => batches.push([[...payload], n]));
    transport.push(...datagrams.map((bytes) => ({ bytes, acked })));
    await new Promise((resolve) => setTimeout(resolve, 0));
    await channel.close();
    await running;
    const sent = transport.log.filter((l) => l.startsWith("send"));
    return { batches, stats: stats.snapshot(), log: log.lines, format: channel.format, sent };
  };
  const fast = await through(true);
  const full = await through(false); // every one parsed, then ACKed by the channel
  assertEquals(fast.sent, [], "ACKed on arrival: never again");
  assertEquals(full.sent.length, datagrams.length);
  assertEquals(fast.batches, full.batches);
  assertEquals(fast.stats, full.stats);
  assertEquals(fast.log, full.log);
  assertEquals(fast.format, full.format);
  // The two bad containers dropped; the datagram with trailing bytes counted as malformed, its batch still taken.
  assertEquals(fast.batches.length, 9);
  assertEquals(fast.stats.drops.kernel_bad_message, 3);
});

Deno.test("kernel channel: while the gate is held, batches wait for its release, then each is ACKed first", async () => {
  const transport = new HandOffTransport();
  const channel = await KernelChannel.open({
    instance: "default",
    transport,
    stats: new Stats(),
    log: new MemoryLogger(),
    kernelVersion: V4_1_13,
    probe: false,
  });
  const running = channel.run((_, n) => transport.log.push(`batch of ${n}`));
  channel.ackGate.hold();
  transport.push({ bytes: batch(entry(1)), acked: false }, { bytes: batch(entry(2)), acked: false });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(transport.log, []);
  channel.ackGate.release();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(transport.log, [
    `send cmd ${JNLOP_JOOLD_ACK}`,
    "batch of 1",
    `send cmd ${JNLOP_JOOLD_ACK}`,
    "batch of 1",
  ]);
  await channel.close();
  await running;
});

function scriptedTransport(answer: (request: Uint8Array) => Uint8Array): KernelTransport {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  return {
    familyId: DOUBLE_FAMILY_ID,
    localPort: 4242,
    ackGate: new AckGate(),
    send(message) {
      const reply = answer(message);
      // Replies carry the request's seq.
      const seq = readNetlinkHeader(message).seq;
      new DataView(reply.buffer, reply.byteOffset).setUint32(8, seq, true);
      queue.push(reply);
      wake?.();
    },
    async *receive() {
      while (true) {
        const next = queue.shift();
        if (next) yield { bytes: next, acked: false };
        else if (closed) return;
        else await new Promise<void>((resolve) => wake = resolve);
      }
    },
    close() {
      closed = true;
      wake?.();
      return Promise.resolve();
    },
  };
}

Deno.test("kernel double: frames split across chunks", () => {
  const reader = new FrameReader();
  const a = encodeFrame(Uint8Array.of(1, 2, 3));
  const b = encodeFrame(Uint8Array.of(4));
  const both = new Uint8Array([...a, ...b]);
  assertEquals(reader.push(both.subarray(0, 5)), []);
  assertEquals(reader.push(both.subarray(5)), [Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
  assertEquals(reader.buffered, 0);
  assertEquals(NLMSG_HDRLEN, 16);
});

Deno.test("kernel double: the pumps' reader gives frames whole in a chunk as views of it (no buffer per frame)", () => {
  const reader = new FrameReader(true);
  const a = encodeFrame(Uint8Array.of(1, 2, 3));
  const b = encodeFrame(Uint8Array.of(4, 5));
  const chunk = new Uint8Array([...a, ...b, ...a.subarray(0, 3)]);
  const frames = reader.push(chunk);
  assertEquals(frames, [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)]);
  assert(frames.every((f) => f.buffer === chunk.buffer), "views of the chunk");
  const rest = reader.push(a.subarray(3)); // a frame split across chunks still gets a buffer of its own
  assertEquals(rest, [Uint8Array.of(1, 2, 3)]);
  assert(rest[0].buffer !== chunk.buffer);
});

Deno.test("kernel double: frames fed one byte at a time, empty frames, several frames per chunk", () => {
  const frames = [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(4), new Uint8Array(300).fill(7)];
  const stream = new Uint8Array(frames.flatMap((f) => [...encodeFrame(f)]));
  for (const size of [1, 2, 3, 5, 7, stream.length]) {
    const reader = new FrameReader();
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += size) {
      out.push(...reader.push(stream.subarray(at, at + size)));
      if (at + size < stream.length) assert(reader.buffered <= 4 + 300, `buffered ${reader.buffered}`);
    }
    assertEquals(out, frames, `chunks of ${size} bytes`);
    assertEquals(reader.buffered, 0);
  }
});

Deno.test("kernel double + thread: thousands of frames arrive in order, none lost or duplicated", async () => {
  const rig = await Rig.open();
  const total = 3000;
  const received: number[] = [];
  const reading = (async () => {
    for await (const { bytes } of rig.transport.receive()) {
      received.push(bytes[0] | bytes[1] << 8);
      if (received.length === total) break;
    }
  })();
  for (let i = 0; i < total; i++) await rig.inject(Uint8Array.of(i & 0xff, i >> 8));
  await reading;
  assertEquals(received, Array.from({ length: total }, (_, i) => i));
  await rig.transport.close();
});
