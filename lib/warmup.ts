/**
 * Start-up warm-up of the main thread's per-batch paths, before the kernel socket joins Jool's multicast group.
 *
 * Why: a fresh V8 compiles each function on its first call and runs it in its interpreter until it is hot;
 * measured in the VM lab (QEMU TCG, Jool 4.1.9), the first batch after start spent 3 ms parsing, 17 ms in a
 * first regex execution and 4 ms in first calls of the channel's methods, and the first datagram send took 11 ms.
 * The ACKs of plain batches now leave from the kernel thread, which warms its own path
 * (`lib/kernel/thread.ts`), so these first calls no longer delay an ACK; they still delay the first datagrams
 * of a burst to the peer. So the warm-up runs the real code — {@link KernelChannel} and {@link Relay}, both
 * directions — over in-memory stand-ins of the kernel socket and the network, and then Deno's UDP send/receive
 * path over a loopback socket. Nothing reaches the kernel or the sync network; the counters it touches are its
 * own.
 * @module
 */
import { errorMessage } from "./errors.ts";
import { DEFAULT_REQUEST_VERSION, type JoolVersion } from "./jool/header.ts";
import { encodeJooldAdd, JNLOP_JOOLD_ACK } from "./jool/messages.ts";
import { AckGate } from "./kernel/ack_rule.ts";
import { KernelChannel } from "./kernel/channel.ts";
import type { KernelTransport } from "./kernel/transport.ts";
import type { Logger } from "./logger.ts";
import { type NetSide, Relay } from "./relay.ts";
import { encodeEntry, type SessionEntry } from "./session/entries.ts";
import type { SessionFormat } from "./session/format.ts";
import { Stats } from "./stats.ts";
import { upstreamWire } from "./wire.ts";

/** A documentation-address UDP session, the warm-up's only input. */
const SAMPLE: SessionEntry = {
  proto: 1,
  state: 0,
  timer: 0,
  expiration: 60_000,
  src6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
  src6Port: 1000,
  src4: Uint8Array.of(192, 0, 2, 1),
  src4Port: 2000,
  dst4: Uint8Array.of(198, 51, 100, 7),
  dst4Port: 53,
  dst6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7),
  dst6Port: 53,
};

/** Offset of the genl cmd byte (after the 16-byte nlmsghdr). */
const GENL_CMD_OFFSET = 16;

/** What the warm-up did: every count equals `rounds` when the whole path ran. */
export interface WarmUpResult {
  /** JOOLD_ACKs the kernel channel sent (to the stand-in). */
  readonly acks: number;
  /** Datagrams the relay sent (to the stand-in). */
  readonly datagrams: number;
  /** JOOLD_ADDs the kernel channel sent for datagrams (to the stand-in). */
  readonly adds: number;
  /** Datagrams that made the round trip over the loopback socket (0 when it could not be opened). */
  readonly loopbackDatagrams: number;
  /** Wall time, ms. */
  readonly ms: number;
}

/** What to warm up. */
export interface WarmUpOptions {
  /** The configured instance (its name goes through the same checks as the real batches'). */
  readonly instance: string;
  /** Session format of the local kernel (C when unknown: the newest). */
  readonly format?: SessionFormat;
  /** Version the kernel's multicasts will carry. */
  readonly version?: JoolVersion;
  /** Batches each way (default 1500). */
  readonly rounds?: number;
  /** Datagrams over the loopback socket (default 64; 0 skips it). */
  readonly loopbackRounds?: number;
  /** Where a loopback socket that cannot be opened is reported (debug). */
  readonly log: Logger;
}

/** Runs the warm-up (see the module doc). Never touches the real kernel or the sync network. */
export async function warmUp(options: WarmUpOptions): Promise<WarmUpResult> {
  const started = performance.now();
  const rounds = options.rounds ?? 1500;
  const format = options.format ?? "C";
  const entry = encodeEntry(SAMPLE, format);
  const payload = new Uint8Array(entry.length * 10);
  for (let i = 0; i < 10; i++) payload.set(entry, i * entry.length);
  const multicast = encodeJooldAdd({
    familyId: STAND_IN_FAMILY,
    pid: 0,
    seq: 0,
    version: options.version ?? DEFAULT_REQUEST_VERSION,
    instance: options.instance,
  }, payload);

  const counts = { acks: 0, adds: 0, datagrams: 0 };
  const netDone = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const transport: KernelTransport = {
    familyId: STAND_IN_FAMILY,
    localPort: 1,
    ackGate: new AckGate(),
    send: (message) => {
      if (message[GENL_CMD_OFFSET] === JNLOP_JOOLD_ACK) counts.acks++;
      else counts.adds++;
    },
    async *receive() {
      // Not ACKed on arrival: the channel's own ACK path (the rare cases of the ACK rule) is warmed up too.
      for (let i = 0; i < rounds; i++) yield { bytes: multicast.slice(), acked: false };
      await netDone.promise; // end only after the net side has been through its rounds too
    },
    close: () => {
      release.resolve();
      return Promise.resolve();
    },
  };
  const net: NetSide = {
    send: (datagram) => {
      counts.datagrams++;
      return Promise.resolve(datagram.length > 0);
    },
    async *receive() {
      for (let i = 0; i < rounds; i++) yield payload.slice();
      netDone.resolve();
      await release.promise;
    },
  };
  const log = options.log;
  const quiet = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
  const kernel = await KernelChannel.open({
    instance: options.instance,
    transport,
    stats: new Stats(),
    log: quiet,
    kernelVersion: options.version,
    probe: false,
  });
  const relay = new Relay(kernel, net, upstreamWire, new Stats(), quiet);
  try {
    await relay.run();
  } finally {
    await kernel.close();
  }
  const loopbackDatagrams = await warmUpLoopback(options.loopbackRounds ?? 64, log);
  return { ...counts, loopbackDatagrams, ms: performance.now() - started };
}

/** Family id of the stand-in transport: any value works, the channel only compares it with itself. */
const STAND_IN_FAMILY = 0x7fff;
/** A loopback datagram that has not come back within this long ends the loopback warm-up. */
const LOOPBACK_TIMEOUT_MS = 1000;

/**
 * Sends `rounds` datagrams to itself over a 127.0.0.1 socket, so Deno's UDP send and receive paths are
 * compiled before the first real datagram. Returns how many came back; 0 (logged at debug) when the socket
 * cannot be opened, e.g. a namespace whose loopback is down: the daemon works without this warm-up.
 */
async function warmUpLoopback(rounds: number, log: Logger): Promise<number> {
  if (rounds <= 0) return 0;
  let conn: Deno.DatagramConn;
  try {
    conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  } catch (error) {
    log.debug(`UDP send path not warmed up: cannot open a loopback socket: ${errorMessage(error)}`);
    return 0;
  }
  const self = conn.addr as Deno.NetAddr;
  const datagram = new Uint8Array(64);
  const buffer = new Uint8Array(2048);
  let received = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      await conn.send(datagram, self);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) =>
        timer = setTimeout(() => resolve("late"), LOOPBACK_TIMEOUT_MS)
      );
      const back = await Promise.race([conn.receive(buffer), late]).finally(() => clearTimeout(timer));
      if (back === "late") {
        log.debug(
          `UDP send path warm-up stopped: a loopback datagram did not come back within ${LOOPBACK_TIMEOUT_MS} ms`,
        );
        break;
      }
      received++;
    }
  } catch (error) {
    log.debug(`UDP send path warm-up stopped after ${received} datagrams: ${errorMessage(error)}`);
  } finally {
    conn.close();
  }
  return received;
}
