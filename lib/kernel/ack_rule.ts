/**
 * When the daemon ACKs a kernel batch: the one home of that rule (docs/protocol.md §2, §3).
 *
 * Why it matters. Jool's kernel multicasts one batch of sessions, then waits for a JOOLD_ACK before it sends the
 * next. A ≥4.1.11 kernel queues what arrives meanwhile (up to ss-capacity); a 4.1.9/4.1.10 kernel keeps only
 * the ~10 sessions that fit its one pending message and loses every session beyond that for good. So on the most
 * deployed kernel, the time from the kernel's multicast to our ACK decides how many sessions of a burst ever
 * reach the standby. An ACK carries no sequence number: any ACK lets the kernel send its next batch.
 *
 * The rule.
 * 1. ACKed: every multicast of our instance that speaks a version we support — a session batch, and also an
 *    unusable message of our instance (no container, malformed), as upstream does, so the kernel keeps flushing.
 * 2. Never ACKed: another instance's multicasts (another joold answers them), error replies and NLMSG_ERROR
 *    (they are not batches), and unsupported versions (another major.minor rejects the ACK, and the 4.2 release
 *    candidate, which still says 4.1, would read command 29 as something else).
 * 3. When. A plain batch — exactly one multicast of our instance, a supported version, the session container
 *    first ({@link ackableBatchVersion}) — is ACKed on arrival by the kernel thread (`lib/kernel/thread.ts`),
 *    right after its recv() and before anything else, on a thread that does nothing else. Everything else is
 *    decided after parsing by the kernel channel on the main thread ({@link shouldAck}): rare cases where
 *    latency does not matter.
 * 4. Back-pressure. While the relay's network queue is above its high watermark the {@link AckGate} is held:
 *    the kernel thread ACKs nothing on arrival, and the kernel channel ACKs a held batch only once the gate is
 *    released. Holding the ACK pauses the kernel's flushing (its own queue absorbs the burst) instead of joold
 *    dropping batches the kernel considers delivered.
 * 5. The ACK carries the version the multicast announced ({@link AckWriter}).
 * @module
 */
import { ackableBatchVersion, type InstanceKey } from "../jool/ack_check.ts";
import { sameInstance, unpackVersion } from "../jool/header.ts";
import { encodeJooldAck, type KernelMessage } from "../jool/messages.ts";
import { HOST_LITTLE_ENDIAN } from "../jool/netlink.ts";
import { unsupportedReason } from "./version.ts";

/**
 * Rule 3: the packed version to ACK `datagram` with the moment it is read, or 0 when the kernel channel decides
 * after parsing. Allocation-free; `size` is the datagram's length when it sits at the start of a receive buffer.
 */
export function ackOnArrival(
  datagram: Uint8Array,
  familyId: number,
  key: InstanceKey,
  size?: number,
): number {
  return ackableBatchVersion(datagram, familyId, key, size);
}

/** Rules 1 and 2 for a parsed message: whether the full path ACKs it (gate permitting). */
export function shouldAck(m: KernelMessage, instance: string): boolean {
  switch (m.kind) {
    case "batch":
      return sameInstance(m.header.iname, instance) && unsupportedReason(m.header.version) === undefined;
    case "jool_reply":
      return m.pid === 0 && sameInstance(m.header.iname, instance); // a multicast without a container
    case "invalid":
      return m.header === undefined || sameInstance(m.header.iname, instance);
    default:
      return false;
  }
}

/** Index of the hold flag in {@link AckGate.flags}. */
const HOLD = 0;

/**
 * Rule 4: the back-pressure gate, a flag in shared memory so the kernel thread reads it without a message.
 * The relay holds and releases it; the kernel thread and the kernel channel obey it.
 */
export class AckGate {
  #released: PromiseWithResolvers<void> | undefined;

  /**
   * A gate over `flags`: the same flag on both threads.
   * @param flags the shared flag (one Int32 over a SharedArrayBuffer); a fresh one by default
   */
  constructor(readonly flags: Int32Array = new Int32Array(new SharedArrayBuffer(4))) {}

  /** Whether ACKs are held. Any thread. */
  get held(): boolean {
    return Atomics.load(this.flags, HOLD) !== 0;
  }

  /** Holds ACKs from now on. */
  hold(): void {
    Atomics.store(this.flags, HOLD, 1);
  }

  /** Lets ACKs go again and wakes whoever waits in {@link whenReleased}. */
  release(): void {
    Atomics.store(this.flags, HOLD, 0);
    this.#released?.resolve();
    this.#released = undefined;
  }

  /** A promise that resolves on {@link release} while held; undefined when not held. */
  whenReleased(): Promise<void> | undefined {
    if (!this.held) return undefined;
    this.#released ??= Promise.withResolvers<void>();
    return this.#released.promise;
  }
}

/** Offset of nlmsg_seq in a netlink message (after len u32, type u16, flags u16). */
const NLMSG_SEQ_OFFSET = 8;

/**
 * Rule 5: JOOLD_ACK messages. The ACK is the same 48 bytes for every batch but for nlmsg_seq, so it is built
 * once per version and only its sequence number patched (building it cold took 16 ms of a first batch's
 * turnaround under emulation). The kernel does not check the sequence number.
 */
export class AckWriter {
  #template: Uint8Array | undefined;
  #view: DataView | undefined;
  #version = 0;
  #seq: number;

  /**
   * A writer for one socket and instance.
   * @param familyId the Jool family id
   * @param pid our netlink port
   * @param instance the configured instance name
   * @param firstSeq sequence number to start after
   */
  constructor(
    readonly familyId: number,
    readonly pid: number,
    readonly instance: string,
    firstSeq: number,
  ) {
    this.#seq = firstSeq;
  }

  /** Builds the template for `version` (packed) ahead of the first ACK. */
  prepare(version: number): void {
    if (this.#template && this.#version === version) return;
    this.#template = encodeJooldAck({
      familyId: this.familyId,
      pid: this.pid,
      seq: 0,
      version: unpackVersion(version),
      instance: this.instance,
    });
    this.#view = new DataView(this.#template.buffer, this.#template.byteOffset, this.#template.length);
    this.#version = version;
  }

  /** The ACK for a multicast of `version` (packed): one buffer reused by every call, so send it at once. */
  ack(version: number): Uint8Array {
    this.prepare(version);
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    this.#view!.setUint32(NLMSG_SEQ_OFFSET, this.#seq, HOST_LITTLE_ENDIAN);
    return this.#template!;
  }
}
