/**
 * The kernel channel: the daemon's side of Jool's Generic Netlink protocol (spec §1.5, §2.4–2.5, §3.2, §5.2)
 * over a {@link KernelTransport}. It probes the instance at start-up, receives the kernel's session batches
 * (ACKing each one at once), and sends JOOLD_ADD / JOOLD_ADVERTISE.
 * @module
 */
import { EXIT, JooldError } from "../errors.ts";
import {
  DEFAULT_REQUEST_VERSION,
  inameError,
  type JoolVersion,
  packVersion,
  sameInstance,
  unpackVersion,
  versionText,
} from "../jool/header.ts";
import { ackableBatchVersion, type InstanceKey, instanceKey } from "../jool/ack_check.ts";
import {
  encodeGlobalForeach,
  encodeJooldAck,
  encodeJooldAdd,
  encodeJooldAdvertise,
  type KernelMessage,
  parseKernelMessage,
  type RequestContext,
  ssEnabledOf,
} from "../jool/messages.ts";
import { HOST_LITTLE_ENDIAN, splitMessages } from "../jool/netlink.ts";
import type { Logger } from "../log.ts";
import { LogRateLimiter } from "../rate_limit.ts";
import type { SessionFormat } from "../session/format.ts";
import { countSessions, formatBySize } from "../session/payload.ts";
import type { DropReason, Stats } from "../stats.ts";
import type { KernelTransport } from "./transport.ts";
import { formatFor, unsupportedReason } from "./version.ts";

/** Options of {@link KernelChannel.open}. */
export interface KernelChannelOptions {
  /** Instance name (the modsocket's `instance`). */
  instance: string;
  transport: KernelTransport;
  stats: Stats;
  log: Logger;
  /** Version read from /sys/module/jool/version, if readable. */
  kernelVersion?: JoolVersion;
  /** How long the start-up probe waits for the kernel's answer (default 5000 ms). */
  probeTimeoutMs?: number;
  /** false skips the start-up probe: only for in-memory transports (the warm-up, `lib/warmup.ts`). */
  probe?: boolean;
}

/** Receives each accepted batch's container payload (a view into a fresh datagram: keep it as is) and its session count. */
export type BatchHandler = (payload: Uint8Array, sessions: number) => void;

/** Offset of nlmsg_seq in a netlink message (after len u32, type u16, flags u16). */
const NLMSG_SEQ_OFFSET = 8;

/** errno values the channel interprets. */
const EPERM = 1;
const ESRCH = 3;
/** Bound on GLOBAL_FOREACH rounds (the globals fit in one reply; flag M asks for more). */
const MAX_PROBE_ROUNDS = 8;

/** The kernel side of the daemon. */
export class KernelChannel {
  readonly #instance: string;
  readonly #transport: KernelTransport;
  readonly #stats: Stats;
  readonly #log: Logger;
  readonly #limiter = new LogRateLimiter();
  readonly #iterator: AsyncIterator<Uint8Array>;
  /** Kernel messages that arrived during the probe, handled first by run(). */
  readonly #pending: Uint8Array[] = [];
  #version: JoolVersion | undefined;
  #format: SessionFormat | undefined;
  #seq: number;
  #closed = false;
  #backpressure: (() => Promise<void> | undefined) | undefined;
  /** run() has started: batches may be ACKed on arrival. */
  #running = false;
  readonly #key: InstanceKey;
  /** Datagrams ACKed on arrival (#onRead), so the full path does not ACK them again. */
  readonly #preAcked = new WeakSet<Uint8Array>();
  #ackTemplate: Uint8Array | undefined;
  #ackView: DataView | undefined;
  /** Packed version the ACK template carries. */
  #ackVersion = 0;

  private constructor(options: KernelChannelOptions) {
    this.#instance = options.instance;
    this.#transport = options.transport;
    this.#stats = options.stats;
    this.#log = options.log;
    this.#version = options.kernelVersion;
    this.#format = options.kernelVersion ? formatFor(options.kernelVersion) : undefined;
    // Like libnl: start near time() so two runs rarely reuse a sequence number; never 0 (multicasts use 0).
    this.#seq = (Math.floor(Date.now() / 1000) & 0x7fffffff) || 1;
    this.#key = instanceKey(options.instance);
    this.#iterator = options.transport.receive((datagram) => this.#onRead(datagram))[Symbol.asyncIterator]();
  }

  /**
   * Probes the kernel: the instance exists (else JooldError EXIT.INSTANCE_ABSENT), we have the permission
   * (else EXIT.PERMISSION); warns when ss-enabled is off. Throws EXIT.KERNEL_UNSUPPORTED for a kernel version
   * this daemon cannot speak.
   */
  static async open(options: KernelChannelOptions): Promise<KernelChannel> {
    const nameProblem = inameError(options.instance);
    if (nameProblem) throw new JooldError(EXIT.CONFIG, `${nameProblem}; fix the modsocket's "instance"`);
    if (options.kernelVersion) {
      const reason = unsupportedReason(options.kernelVersion);
      if (reason) throw new JooldError(EXIT.KERNEL_UNSUPPORTED, reason);
    }
    const channel = new KernelChannel(options);
    if (options.probe !== false) await channel.#probe(options.probeTimeoutMs ?? 5000);
    // The first batch's ACK then only patches a sequence number: building it took 16 ms of that batch's
    // turnaround under emulation (VM lab, Jool 4.1.9), time a 4.1.9 kernel spends losing sessions (spec §2.3).
    channel.#prepareAck(channel.#currentVersion());
    return channel;
  }

  /** Session format the local kernel speaks, undefined until known. */
  get format(): SessionFormat | undefined {
    return this.#format;
  }

  /** The local kernel's version, undefined until known (from /sys or the first multicast). */
  get kernelVersion(): JoolVersion | undefined {
    return this.#version;
  }

  /**
   * Sends one JOOLD_ADD with this (already validated) payload; counts KERNEL_SENT_PKTS/BYTES/SESSIONS or
   * KERNEL_SEND_ERRORS.
   */
  addSessions(payload: Uint8Array, sessions: number): void {
    if (this.#send(encodeJooldAdd(this.#context(), payload), "JOOLD_ADD")) {
      this.#stats.add("KERNEL_SENT_PKTS");
      this.#stats.add("KERNEL_SENT_BYTES", payload.length);
      this.#stats.add("KERNEL_SENT_SESSIONS", sessions);
    }
  }

  /** Sends JOOLD_ADVERTISE (the kernel then resends its whole session table, batch by batch). */
  advertise(): void {
    this.#send(encodeJooldAdvertise(this.#context()), "JOOLD_ADVERTISE");
  }

  /**
   * Receive loop until close(): each batch for our instance is ACKed at once, counted, then given to
   * `onBatch`. Other instances' batches are counted and ignored (no ACK); error replies are counted and
   * logged (rate-limited), never ACKed. A plain batch of ours is ACKed the moment the transport has read it
   * (`lib/jool/ack_check.ts`), before the datagrams read with it are processed; the rest is decided here.
   *
   * `backpressure`, when given, is asked before each ACK: a promise means "the consumer is saturated", and the
   * channel holds that batch's ACK (and stops reading) until it resolves. The kernel sends one batch per ACK,
   * so this pauses the kernel's flushing instead of dropping batches it considers delivered.
   */
  async run(onBatch: BatchHandler, backpressure?: () => Promise<void> | undefined): Promise<void> {
    this.#backpressure = backpressure;
    for (const message of this.#pending.splice(0)) await this.#handle(message, onBatch, false);
    this.#running = true;
    while (!this.#closed) {
      const next = await this.#iterator.next();
      if (next.done) break;
      const acked = this.#preAcked.delete(next.value);
      for (const message of this.#split(next.value)) {
        const wait = this.#handle(message, onBatch, acked);
        if (wait) await wait;
      }
    }
  }

  /** Whether a kernel datagram (a batch, typically) waits that the channel reads only after an event-loop turn. */
  hasPendingBatch(): boolean {
    return !this.#closed && this.#transport.hasPending();
  }

  /** Stops run() and releases the transport. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close();
  }

  // ---- start-up probe ---------------------------------------------------------------------------------------

  async #probe(timeoutMs: number): Promise<void> {
    let offset: number | undefined;
    for (let round = 0; round < MAX_PROBE_ROUNDS; round++) {
      const context = this.#context();
      try {
        this.#transport.send(encodeGlobalForeach(context, offset));
      } catch (cause) {
        throw new JooldError(
          EXIT.RUNTIME,
          `cannot send the start-up probe to the kernel: ${errorText(cause)}`,
          { cause },
        );
      }
      const reply = await this.#awaitReply(context.seq, timeoutMs);
      switch (reply.kind) {
        case "netlink_error":
          if (reply.error === EPERM) throw this.#permissionError();
          throw new JooldError(
            EXIT.RUNTIME,
            `the kernel rejected the start-up probe (GLOBAL_FOREACH) with errno ${reply.error}; ` +
              "is the Jool module a 4.1.x release?",
          );
        case "jool_error":
          if (reply.code === ESRCH) {
            throw new JooldError(
              EXIT.INSTANCE_ABSENT,
              `the instance '${this.#instance}' does not exist in this network namespace; ` +
                "create it with `jool instance add`",
            );
          }
          if (reply.code === EPERM) throw this.#permissionError();
          throw new JooldError(
            /version mismatch/i.test(reply.message) ? EXIT.KERNEL_UNSUPPORTED : EXIT.RUNTIME,
            `the kernel refused the start-up probe: error ${reply.code}: ${oneLine(reply.message)}`,
          );
        case "jool_reply": {
          const enabled = ssEnabledOf(reply.attributes);
          if (enabled === true) {
            this.#log.info(`instance '${this.#instance}' exists and has ss-enabled on`);
            return;
          }
          if (enabled === false) {
            this.#log.warn(
              `session sync is disabled on instance '${this.#instance}' (ss-enabled is false): the kernel sends ` +
                `no sessions and rejects ours; enable it with \`jool -i ${this.#instance} global update ` +
                "ss-enabled true`",
            );
            return;
          }
          const last = reply.attributes.at(-1);
          if (!reply.more || !last) {
            this.#log.warn(`could not tell whether ss-enabled is on for instance '${this.#instance}'`);
            return;
          }
          offset = last.type;
        }
      }
    }
    this.#log.warn(`could not tell whether ss-enabled is on for instance '${this.#instance}'`);
  }

  #permissionError(): JooldError {
    return new JooldError(
      EXIT.PERMISSION,
      "the kernel refused the request: CAP_NET_ADMIN is required; run joold as root or grant it " +
        "CAP_NET_ADMIN in the instance's network namespace",
    );
  }

  /** Reads kernel messages until the reply to `seq`; others are kept for run(). */
  async #awaitReply(
    seq: number,
    timeoutMs: number,
  ): Promise<Extract<KernelMessage, { kind: "netlink_error" | "jool_error" | "jool_reply" }>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), timeoutMs)
    );
    try {
      while (true) {
        const next = await Promise.race([this.#iterator.next(), timeout]);
        if (next === "timeout") {
          throw new JooldError(
            EXIT.RUNTIME,
            `the kernel did not answer the start-up probe within ${timeoutMs} ms`,
          );
        }
        if (next.done) {
          throw new JooldError(EXIT.RUNTIME, "the kernel channel closed during the start-up probe");
        }
        for (const raw of this.#split(next.value)) {
          const m = parseKernelMessage(raw, this.#transport.familyId);
          const isReply =
            (m.kind === "netlink_error" || m.kind === "jool_error" || m.kind === "jool_reply") &&
            m.seq === seq && !(m.kind === "netlink_error" && m.error === 0);
          if (isReply) {
            return m as Extract<KernelMessage, { kind: "netlink_error" | "jool_error" | "jool_reply" }>;
          }
          this.#pending.push(raw);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- receiving ---------------------------------------------------------------------------------------------

  #split(datagram: Uint8Array): Uint8Array[] {
    const { messages, error } = splitMessages(datagram);
    if (error) this.#drop("kernel_bad_message", `malformed netlink datagram: ${error}`);
    return messages;
  }

  /**
   * ACK on arrival: called by the transport right after reading `datagram` (see run()). Only the plain case —
   * one multicast batch of our instance and a supported version — and only when the relay is not holding ACKs.
   */
  #onRead(datagram: Uint8Array): void {
    if (!this.#running || this.#closed) return;
    const version = ackableBatchVersion(datagram, this.#transport.familyId, this.#key);
    if (version === 0) return;
    if (this.#backpressure?.()) return; // held: #batch ACKs it once the relay has drained
    this.#ack(version);
    this.#preAcked.add(datagram);
  }

  /** `acked`: the datagram holding `raw` was ACKed on arrival. */
  #handle(raw: Uint8Array, onBatch: BatchHandler, acked: boolean): Promise<void> | void {
    const m = parseKernelMessage(raw, this.#transport.familyId);
    switch (m.kind) {
      case "batch":
        return this.#batch(m, onBatch, acked);
      case "jool_error":
        return this.#errorReply(m.code, m.message);
      case "netlink_error":
        if (m.error !== 0) this.#errorReply(m.error, "rejected by Generic Netlink (NLMSG_ERROR)");
        return;
      case "jool_reply":
        if (m.pid !== 0) {
          this.#log.debug("the kernel accepted a request (empty success reply)");
        } else if (!sameInstance(m.header.iname, this.#instance)) {
          this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
        } else {
          // Upstream ACKs here so the kernel keeps flushing (spec §5.2 step 6).
          this.#drop("kernel_no_container", "a kernel multicast without a session container");
          if (!acked) this.#ack(this.#currentVersion());
        }
        return;
      case "invalid":
        if (m.header && !sameInstance(m.header.iname, this.#instance)) {
          this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
          return;
        }
        this.#drop(m.problem, `invalid kernel message: ${m.detail}`);
        if (!acked) this.#ack(this.#currentVersion());
        return;
      case "overrun":
        this.#drop("kernel_overrun", "the netlink receive buffer overflowed; kernel batches were lost");
        return;
      case "done":
      case "noop":
        return;
      case "other":
        this.#log.debug(`ignored a netlink message of type ${m.type}`);
        return;
    }
  }

  #batch(
    m: Extract<KernelMessage, { kind: "batch" }>,
    onBatch: BatchHandler,
    acked: boolean,
  ): Promise<void> | void {
    if (!sameInstance(m.header.iname, this.#instance)) {
      this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
      return;
    }
    const reason = unsupportedReason(m.header.version);
    if (reason) {
      // No ACK: another major.minor rejects it, and the 4.2 rc would read cmd 29 as FMRT_FLUSH.
      this.#drop("kernel_version_mismatch", `kernel multicast from ${reason}`);
      return;
    }
    if (acked) return this.#accept(m, onBatch, true);
    const wait = this.#backpressure?.();
    if (wait) return wait.then(() => this.#accept(m, onBatch, false));
    this.#accept(m, onBatch, false);
  }

  #accept(m: Extract<KernelMessage, { kind: "batch" }>, onBatch: BatchHandler, acked: boolean): void {
    // ACK first, before any other per-batch work: the kernel sends the next batch only after it, and a 4.1.9
    // kernel loses the sessions that overflow its one-batch queue meanwhile (spec §2.3).
    // The ACK mirrors the version the kernel's multicast announced (spec §9); logging the change waits.
    const previous = this.#version;
    this.#version = m.header.version;
    if (!acked) this.#ack(packVersion(m.header.version));
    this.#learn(previous, m.header.version, m.payload);
    const sessions = countSessions(m.payload);
    if (sessions === undefined || sessions === 0) {
      this.#drop(
        "kernel_bad_message",
        sessions === 0 ? "a kernel batch with no session" : "a kernel batch with a malformed entry",
      );
      return;
    }
    this.#stats.add("KERNEL_RCVD_BATCHES");
    this.#stats.add("KERNEL_RCVD_BYTES", m.payload.length);
    this.#stats.add("KERNEL_RCVD_SESSIONS", sessions);
    onBatch(m.payload, sessions); // a view of a fresh datagram (the transport's contract): no copy needed
  }

  /**
   * Learns (or corrects) the kernel's version and format from a multicast; the multicast wins. `previous` is
   * the version known before this multicast (the caller has already adopted the new one).
   */
  #learn(previous: JoolVersion | undefined, version: JoolVersion, payload: Uint8Array): void {
    if (!previous || packVersion(previous) !== packVersion(version)) {
      if (previous) {
        this.#warn(
          "version",
          `the kernel's multicasts say Jool ${versionText(version)}, not ${versionText(previous)}; ` +
            "trusting the multicasts",
        );
      } else this.#log.info(`the kernel is Jool ${versionText(version)} (learnt from its first multicast)`);
    }
    const format = formatBySize(payload) ?? formatFor(version);
    if (format !== this.#format) {
      if (this.#format) {
        this.#warn(
          "format",
          `the kernel's multicasts carry format ${format} entries, not ${this.#format}; trusting the multicasts`,
        );
      } else this.#log.info(`the kernel speaks session format ${format}`);
      this.#format = format;
    }
  }

  #errorReply(code: number, message: string): void {
    this.#stats.kernelError(code);
    if (/session sync is disabled/i.test(message)) this.#stats.add("KERNEL_ADDS_REJECTED_SS_DISABLED");
    const suppressed = this.#limiter.admit(`error:${code}`);
    if (suppressed === undefined) return;
    this.#log.error(
      `the kernel answered error ${code}: ${oneLine(message)}` +
        (suppressed ? ` (${suppressed} more like it suppressed)` : ""),
    );
  }

  // ---- sending -----------------------------------------------------------------------------------------------

  /** Sends a JOOLD_ACK carrying `version` (packed): the version of the multicast it answers (spec §9). */
  #ack(version: number): void {
    // The ACK is the same 48 bytes for every batch but for nlmsg_seq: built once per version, seq patched.
    const template = this.#prepareAck(version);
    this.#ackView!.setUint32(NLMSG_SEQ_OFFSET, this.#nextSeq(), HOST_LITTLE_ENDIAN);
    if (this.#send(template, "JOOLD_ACK")) this.#stats.add("KERNEL_ACKS_SENT");
  }

  /** The ACK template for `version` (packed), built when the version changes. */
  #prepareAck(version: number): Uint8Array {
    if (this.#ackTemplate && this.#ackVersion === version) return this.#ackTemplate;
    this.#ackTemplate = encodeJooldAck({ ...this.#context(), version: unpackVersion(version) });
    this.#ackView = new DataView(
      this.#ackTemplate.buffer,
      this.#ackTemplate.byteOffset,
      this.#ackTemplate.length,
    );
    this.#ackVersion = version;
    return this.#ackTemplate;
  }

  /** The version our requests carry: the kernel's last multicast's, else /sys's, else ours. */
  #currentVersion(): number {
    return packVersion(this.#version ?? DEFAULT_REQUEST_VERSION);
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  #send(message: Uint8Array, what: string): boolean {
    try {
      this.#transport.send(message);
      return true;
    } catch (error) {
      this.#stats.add("KERNEL_SEND_ERRORS");
      this.#warn(`send:${what}`, `cannot send ${what} to the kernel: ${errorText(error)}`);
      return false;
    }
  }

  #context(): RequestContext {
    return {
      familyId: this.#transport.familyId,
      pid: this.#transport.localPort,
      seq: this.#nextSeq(),
      version: this.#version ?? DEFAULT_REQUEST_VERSION,
      instance: this.#instance,
    };
  }

  #drop(reason: DropReason, detail: string): void {
    this.#stats.drop(reason);
    this.#warn(`drop:${reason}`, detail);
  }

  #warn(key: string, message: string): void {
    const suppressed = this.#limiter.admit(key);
    if (suppressed === undefined) return;
    this.#log.warn(message + (suppressed ? ` (${suppressed} more like it suppressed)` : ""));
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
