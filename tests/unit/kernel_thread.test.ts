/**
 * The kernel thread (lib/kernel/thread.ts) for real: a Worker blocked in poll/recv on one end of a socket pair
 * that stands in for the netlink socket, the test playing the kernel on the other end. It ACKs plain batches of
 * its instance on arrival — read here while the main thread is itself blocked, so no main-thread work was
 * needed — never anything else, obeys the gate, hands datagrams over in order, stops cleanly, and reports a
 * failure as one line.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { closeFd, FdSocket, openSocketPair, openWakePipe } from "../../ffi/fd_socket.ts";
import { KernelThreadError, startKernelThread } from "../../lib/kernel/thread_transport.ts";
import type { KernelDatagram, KernelTransport } from "../../lib/kernel/transport.ts";
import { JNLOP_JOOLD_ACK } from "../../lib/jool/messages.ts";
import { readNetlinkHeader } from "../../lib/jool/netlink.ts";
import { DOUBLE_FAMILY_ID, THREAD_MODULE } from "../helpers/kernel_double.ts";
import { errorReply, multicastBatch, sessionBatch, sessionEntry } from "../helpers/kernel_messages.ts";
import { HANDOFF_DATAGRAM_BYTES, HANDOFF_SLOT_BYTES } from "../../lib/kernel/handoff.ts";

const PORT = 4242;
/** How long a check that no ACK comes waits for one. */
const QUIET_MS = 300;

/** The thread on one end of a socket pair; `kernel` is the other end, used synchronously by the test. */
async function rig(instance = "default"): Promise<{ transport: KernelTransport; kernel: FdSocket }> {
  const [daemonEnd, kernelEnd] = openSocketPair();
  const transport = await startKernelThread({
    socket: {
      fd: daemonEnd,
      familyId: DOUBLE_FAMILY_ID,
      localPort: PORT,
      send: () => {
        throw new Error("no main-thread send expected");
      },
      close: () => closeFd(daemonEnd),
    },
    instance,
    version: 0,
    threadModule: THREAD_MODULE,
  });
  return { transport, kernel: new FdSocket(kernelEnd, openWakePipe().readFd) };
}

/** The next datagram the thread sent to the "kernel" within `ms`, or undefined. Blocks this thread. */
function ackWithin(kernel: FdSocket, ms: number): Uint8Array | undefined {
  if (kernel.wait(ms) !== "readable") return undefined;
  const read = kernel.receive();
  return read instanceof Uint8Array ? read : undefined;
}

async function take(transport: KernelTransport, count: number): Promise<KernelDatagram[]> {
  const out: KernelDatagram[] = [];
  for await (const datagram of transport.receive()) {
    out.push({ bytes: datagram.bytes.slice(), acked: datagram.acked }); // its bytes are valid until the next one
    if (out.length === count) break;
  }
  return out;
}

Deno.test("kernel thread: a plain batch of ours is ACKed on arrival, with the multicast's version", async () => {
  const { transport, kernel } = await rig();
  try {
    const batch = multicastBatch(sessionEntry(1), "default", [4, 1, 9, 0]);
    assertEquals(kernel.send(batch), 0);
    // The main thread is blocked right here: the ACK comes from the kernel thread alone.
    const ack = ackWithin(kernel, 5000);
    assert(ack !== undefined, "no ACK from the kernel thread");
    assertEquals(ack.length, 48);
    assertEquals(ack[16], JNLOP_JOOLD_ACK);
    const nl = readNetlinkHeader(ack);
    assertEquals([nl.type, nl.flags, nl.pid], [DOUBLE_FAMILY_ID, 1, PORT]);
    assertEquals([...ack.subarray(20, 29)], [0x6a, 0x6f, 0x6f, 0x6c, 4, 1, 9, 0, 2], "magic, 4.1.9, NAT64");
    assertEquals(new TextDecoder().decode(ack.subarray(32, 39)), "default");
    const [handed] = await take(transport, 1);
    assertEquals(handed, { bytes: batch, acked: true });
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: batches longer than a hand-off slot (4.1.9's ss-max-payload raised) are ACKed and handed over whole, in order", async () => {
  const { transport, kernel } = await rig();
  try {
    // 25 format-A entries: 3 500 bytes of payload, two slots; interleaved with short ones so that long ones
    // land at every place in the ring, its last slot included.
    const batches = Array.from(
      { length: 3000 },
      (_, i) => multicastBatch(sessionBatch(i, i % 3 === 0 ? 25 : 1, "A"), "default", [4, 1, 9, 0]),
    );
    assert(batches[0].length > HANDOFF_SLOT_BYTES && batches[0].length <= HANDOFF_DATAGRAM_BYTES);
    const reading = take(transport, batches.length);
    let acks = 0;
    for (const batch of batches) {
      while (kernel.send(batch, true) !== 0) {
        for (let ack = ackWithin(kernel, 0); ack; ack = ackWithin(kernel, 0)) acks++;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      for (let ack = ackWithin(kernel, 0); ack; ack = ackWithin(kernel, 0)) acks++;
    }
    const handed = await reading;
    while (acks < batches.length && ackWithin(kernel, 5000)) acks++;
    assertEquals(acks, batches.length);
    assertEquals(handed.length, batches.length);
    handed.forEach((d, i) => {
      assert(d.acked, `batch ${i} ACKed on arrival`);
      assertEquals(d.bytes, batches[i], `batch ${i} whole`);
    });
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: never ACKs another instance, an error reply, another version, or the 4.2 rc", async () => {
  const { transport, kernel } = await rig("alpha");
  try {
    const never = [
      multicastBatch(sessionEntry(1), "beta"),
      errorReply(22, "Session sync is disabled on this instance.", PORT),
      multicastBatch(sessionEntry(1), "alpha", [4, 2, 0, 0]),
      multicastBatch(sessionEntry(1), "alpha", [4, 1, 255, 5]),
    ];
    for (const datagram of never) assertEquals(kernel.send(datagram), 0);
    assertEquals(ackWithin(kernel, QUIET_MS), undefined);
    const handed = await take(transport, never.length);
    assertEquals(handed, never.map((bytes) => ({ bytes, acked: false })));
    // Its own instance, case-folded as the kernel does: ACKed.
    kernel.send(multicastBatch(sessionEntry(2), "ALPHA"));
    assert(ackWithin(kernel, 5000) !== undefined, "ALPHA is alpha");
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: while the gate is held, nothing is ACKed on arrival", async () => {
  const { transport, kernel } = await rig();
  try {
    transport.ackGate.hold();
    kernel.send(multicastBatch(sessionEntry(1)));
    assertEquals(ackWithin(kernel, QUIET_MS), undefined);
    assertEquals((await take(transport, 1))[0].acked, false, "left to the channel, after the release");
    transport.ackGate.release();
    kernel.send(multicastBatch(sessionEntry(2)));
    assert(ackWithin(kernel, 5000) !== undefined, "released: ACKed on arrival again");
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: hands 2 000 datagrams over in order, none lost or duplicated, each batch ACKed once", async () => {
  const { transport, kernel } = await rig();
  try {
    const total = 2000;
    const reading = take(transport, total); // takes from the hand-off whenever this test yields
    let acks = 0;
    const takeAcks = () => {
      for (let ack = ackWithin(kernel, 0); ack; ack = ackWithin(kernel, 0)) acks++;
    };
    for (let i = 0; i < total; i++) {
      const entry = sessionEntry(i);
      while (kernel.send(multicastBatch(entry), true) !== 0) {
        // The pair is full: take the ACKs that wait, and let the reader free the hand-off's slots.
        takeAcks();
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (i % 32 === 31) await new Promise((resolve) => setTimeout(resolve, 0));
      takeAcks();
    }
    const handed = await reading;
    while (acks < total && ackWithin(kernel, 5000)) acks++;
    assertEquals(ackWithin(kernel, QUIET_MS), undefined, "no second ACK for any batch");
    assertEquals(handed.length, total);
    assertEquals(
      handed.map((d) => d.bytes),
      Array.from({ length: total }, (_, i) => multicastBatch(sessionEntry(i))),
    );
    assert(handed.every((d) => d.acked));
    assertEquals(acks, total);
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: close() stops the parked thread and releases the socket; receive() ends", async () => {
  const { transport, kernel } = await rig();
  const iterator = transport.receive()[Symbol.asyncIterator]();
  const pending = iterator.next();
  await transport.close();
  assertEquals((await pending).done, true);
  // The daemon's end is closed: the "kernel" sees the end of the stream.
  assertEquals(kernel.wait(5000), "readable");
  assertEquals(kernel.receive(), "empty", "recv returns 0 at the peer's close");
  closeFd(kernel.fd);
});

Deno.test("kernel thread: a thread that fails ends receive() with one line", async () => {
  const fd = 1 << 20; // never open: above any descriptor limit, so poll() flags it and recv() fails
  const transport = await startKernelThread({
    socket: { fd, familyId: DOUBLE_FAMILY_ID, localPort: PORT, send: () => {}, close: () => {} },
    instance: "default",
    version: 0,
    threadModule: THREAD_MODULE,
  });
  const error = await take(transport, 1).then(() => undefined, (e) => e);
  assert(error instanceof KernelThreadError, String(error));
  assert(error.message.startsWith("the kernel thread failed: recv: "), error.message);
  assert(!error.message.includes("\n"));
  await transport.close();
});

Deno.test("kernel thread: runs at real-time priority (SCHED_FIFO) where the process may ask for it", async () => {
  /** Threads of this process in SCHED_FIFO (field 41 of /proc/self/task/TID/stat is the policy). */
  const realtime = () =>
    new Set(
      [...Deno.readDirSync("/proc/self/task")].filter((task) => {
        const stat = Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`);
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]) === SCHED_FIFO;
      }).map((task) => task.name),
    );
  const SCHED_FIFO = 1;
  if (Deno.uid() !== 0) {
    console.log("skipping the priority check: not root (CAP_SYS_NICE), the thread stays at normal priority");
    return;
  }
  const before = realtime(); // earlier tests' threads may still be on their way out
  const { transport } = await rig();
  try {
    const started = [...realtime()].filter((tid) => !before.has(tid));
    assertEquals(started.length, 1, "one new real-time thread: the kernel thread");
  } finally {
    await transport.close();
  }
});

Deno.test("kernel thread: bound to one CPU, which the main thread keeps off until close()", async () => {
  /** Cpus_allowed_list of each thread of this process, by thread id. */
  const allowed = () =>
    new Map(
      [...Deno.readDirSync("/proc/self/task")].map((task) => [
        task.name,
        Deno.readTextFileSync(`/proc/self/task/${task.name}/status`).match(/Cpus_allowed_list:\s*(\S+)/)?.[1],
      ]),
    );
  // The thread running this test (Deno's JavaScript main thread need not be the process's first thread): a
  // synchronous read runs on the calling thread, and /proc/thread-self is that thread.
  const main = Deno.readTextFileSync("/proc/thread-self/status").match(/^Pid:\s*(\d+)/m)?.[1] ?? "";
  const before = allowed();
  if (!/[-,]/.test(before.get(main) ?? "")) {
    console.log(`skipping the CPU check: this process may run on CPU ${before.get(main)} only`);
    return;
  }
  const { transport } = await rig();
  const during = allowed();
  await transport.close();
  const bound = [...during].filter(([tid, cpus]) =>
    !before.has(tid) && cpus !== undefined && /^\d+$/.test(cpus)
  );
  assertEquals(bound.length, 1, `one new thread bound to one CPU: ${JSON.stringify([...during])}`);
  const cpu = Number(bound[0][1]);
  const mainCpus = during.get(main) ?? "";
  assert(
    !cpuListHas(mainCpus, cpu),
    `the main thread (CPUs ${mainCpus}) keeps off the kernel thread's CPU ${cpu}`,
  );
  assertEquals(allowed().get(main), before.get(main), "close() gave the main thread its CPUs back");
});

/** Whether a kernel CPU list ("0-3,6") names `cpu`. */
function cpuListHas(list: string, cpu: number): boolean {
  return list.split(",").some((part) => {
    const [lo, hi] = part.split("-").map(Number);
    return cpu >= lo && cpu <= (hi ?? lo);
  });
}
