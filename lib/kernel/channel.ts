/**
 * The kernel channel: the daemon's side of Jool's Generic Netlink protocol (docs/protocol.md §1–§4) over a
 * {@link KernelTransport}. It probes the instance at start-up, parses and counts the kernel's session batches
 * (the kernel thread has ACKed the plain ones on arrival; the rest is ACKed here, per `lib/kernel/ack_rule.ts`),
 * and sends JOOLD_ADD / JOOLD_ADVERTISE.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "../errors.ts";
import {
  DEFAULT_REQUEST_VERSION,
  inameError,
  type JoolVersion,
  packVersion,
  sameInstance,
  versionText,
} from "../jool/header.ts";
import {
  encodeGlobalForeach,
  encodeJooldAdd,
  encodeJooldAdvertise,
  type KernelMessage,
  parseKernelMessage,
  type RequestContext,
  ssEnabledOf,
} from "../jool/messages.ts";
import { splitMessages } from "../jool/netlink.ts";
import type { Logger } from "../logger.ts";
import { LogRateLimiter } from "../rate_limit.ts";
import type { SessionFormat } from "../session/format.ts";
import { countSessions, formatBySize } from "../session/payload.ts";
import type { DropReason, Stats } from "../stats.ts";
import { type AckGate, AckWriter, shouldAck } from "./ack_rule.ts";
import {
  ackableBatchVersion,
  type InstanceKey,
  instanceKey,
  PLAIN_BATCH_PAYLOAD_AT,
  plainBatchPayloadEnd,
} from "../jool/ack_check.ts";
import type { KernelDatagram, KernelTransport } from "./transport.ts";
import { formatFor, unsupportedReason } from "./version.ts";

/** Options of {@link KernelChannel.open}. */
export interface KernelChannelOptions {
  /** Instance name (the modsocket's `instance`). */
  instance: string;
  /** The kernel side's transport (the kernel thread, or an in-memory stand-in). */
  transport: KernelTransport;
  /** Counters the channel updates. */
  stats: Stats;
  /** Where drops and errors are reported (rate-limited). */
  log: Logger;
  /** Version read from /sys/module/jool/version, if readable. */
  kernelVersion?: JoolVersion;
  /** How long the start-up probe waits for the kernel's answer (default 5000 ms). */
  probeTimeoutMs?: number;
  /** false skips the start-up probe: only for in-memory transports (the warm-up, `lib/warmup.ts`). */
  probe?: boolean;
}

/**
 * Receives each accepted batch's container payload and its session count. The payload is a view of the
 * transport's buffer, valid only during the call: copy it to keep it.
 */
export type BatchHandler = (payload: Uint8Array, sessions: number) => void;

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
  readonly #iterator: AsyncIterator<KernelDatagram>;
  /** Kernel messages that arrived during the probe, handled first by run(). */
  readonly #pending: { raw: Uint8Array; acked: boolean }[] = [];
  readonly #acks: AckWriter;
  #version: JoolVersion | undefined;
  /** {@link #version} packed (0 while unknown). */
  #packedVersion = 0;
  readonly #key: InstanceKey;
  #format: SessionFormat | undefined;
  #seq: number;
  #closed = false;

  private constructor(options: KernelChannelOptions) {
    this.#instance = options.instance;
    this.#transport = options.transport;
    this.#stats = options.stats;
    this.#log = options.log;
    this.#version = options.kernelVersion;
    this.#packedVersion = options.kernelVersion ? packVersion(options.kernelVersion) : 0;
    this.#key = instanceKey(options.instance);
    this.#format = options.kernelVersion ? formatFor(options.kernelVersion) : undefined;
    // Like libnl: start near time() so two runs rarely reuse a sequence number; never 0 (multicasts use 0).
    this.#seq = (Math.floor(Date.now() / 1000) & 0x3fffffff) || 1;
    this.#acks = new AckWriter(options.transport.familyId, options.transport.localPort, options.instance, 0);
    this.#iterator = options.transport.receive()[Symbol.asyncIterator]();
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

  /** The back-pressure gate the ACKs obey (`lib/kernel/ack_rule.ts` rule 4): the relay holds and releases it. */
  get ackGate(): AckGate {
    return this.#transport.ackGate;
  }

  /**
   * Receive loop until close(): each batch of our instance is counted, then given to `onBatch`; it is ACKed
   * per `lib/kernel/ack_rule.ts` (on arrival by the kernel thread, else here once the gate allows). Other
   * instances' batches are counted and ignored; error replies are counted and logged (rate-limited). Rejects
   * when the transport fails.
   */
  async run(onBatch: BatchHandler): Promise<void> {
    for (const { raw, acked } of this.#pending.splice(0)) {
      const wait = this.#handle(raw, onBatch, acked);
      if (wait) await wait;
    }
    while (!this.#closed) {
      const next = await this.#iterator.next();
      if (next.done) break;
      const { bytes, acked } = next.value;
      if (acked) {
        this.#stats.add("KERNEL_ACKS_SENT");
        if (this.#acceptPlain(bytes, onBatch)) continue;
      }
      for (const message of this.#split(bytes)) {
        const wait = this.#handle(message, onBatch, acked);
        if (wait) await wait;
      }
    }
  }

  /** Stops run() and releases the transport; resolves once released. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#transport.close();
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
          `cannot send the start-up probe to the kernel: ${errorMessage(cause)}`,
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
        if (next.value.acked) this.#stats.add("KERNEL_ACKS_SENT");
        for (const raw of this.#split(next.value.bytes)) {
          const m = parseKernelMessage(raw, this.#transport.familyId);
          const isReply =
            (m.kind === "netlink_error" || m.kind === "jool_error" || m.kind === "jool_reply") &&
            m.seq === seq && !(m.kind === "netlink_error" && m.error === 0);
          if (isReply) {
            return m as Extract<KernelMessage, { kind: "netlink_error" | "jool_error" | "jool_reply" }>;
          }
          this.#pending.push({ raw: raw.slice(), acked: next.value.acked }); // kept past the next datagram
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
   * A plain batch the kernel thread ACKed, in the steady state (its version and format those already known):
   * counted and handed on straight from its bytes, as the full path ({@link #handle}) would, without splitting
   * and parsing it into objects: at the host relay's saturation A's main isolate then scavenged about 110 times
   * per million sessions instead of 140 (BENCHMARKS.md "Host relay, A's own CPU and memory"). False, having
   * done nothing: anything else, for the full path.
   */
  #acceptPlain(datagram: Uint8Array, onBatch: BatchHandler): boolean {
    const version = ackableBatchVersion(datagram, this.#transport.familyId, this.#key);
    if (version === 0 || version !== this.#packedVersion) return false;
    const end = plainBatchPayloadEnd(datagram);
    if (end === 0) return false;
    const payload = datagram.subarray(PLAIN_BATCH_PAYLOAD_AT, end);
    if (formatBySize(payload) !== this.#format) return false;
    const sessions = countSessions(payload);
    if (sessions === undefined || sessions === 0) return false;
    this.#handOn(payload, sessions, onBatch);
    return true;
  }

  /** Counts an accepted batch and hands it on: a view of the transport's buffer, the handler copies what it keeps. */
  #handOn(payload: Uint8Array, sessions: number, onBatch: BatchHandler): void {
    this.#stats.add("KERNEL_RCVD_BATCHES");
    this.#stats.add("KERNEL_RCVD_BYTES", payload.length);
    this.#stats.add("KERNEL_RCVD_SESSIONS", sessions);
    onBatch(payload, sessions);
  }

  /** `acked`: the datagram holding `raw` was ACKed on arrival by the kernel thread. */
  #handle(raw: Uint8Array, onBatch: BatchHandler, acked: boolean): Promise<void> | void {
    const m = parseKernelMessage(raw, this.#transport.familyId);
    const ack = !acked && shouldAck(m, this.#instance);
    switch (m.kind) {
      case "batch":
        if (!sameInstance(m.header.iname, this.#instance)) {
          this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
          return;
        }
        if (unsupportedReason(m.header.version)) {
          this.#drop(
            "kernel_version_mismatch",
            `kernel multicast from ${unsupportedReason(m.header.version)}`,
          );
          return;
        }
        if (ack) {
          // The ACK goes first, before any other per-batch work (lib/kernel/ack_rule.ts).
          const version = packVersion(m.header.version);
          const wait = this.ackGate.whenReleased();
          if (wait) return wait.then(() => this.#ackThenAccept(version, m, onBatch));
          this.#ack(version);
        }
        return this.#accept(m, onBatch);
      case "jool_error":
        this.#errorReply(m.code, m.message);
        return;
      case "netlink_error":
        if (m.error !== 0) this.#errorReply(m.error, "rejected by Generic Netlink (NLMSG_ERROR)");
        return;
      case "jool_reply":
        if (m.pid !== 0) {
          this.#log.debug("the kernel accepted a request (empty success reply)");
        } else if (!sameInstance(m.header.iname, this.#instance)) {
          this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
        } else this.#drop("kernel_no_container", "a kernel multicast without a session container");
        break;
      case "invalid":
        if (m.header && !sameInstance(m.header.iname, this.#instance)) {
          this.#stats.add("KERNEL_OTHER_INSTANCE_BATCHES");
          return;
        }
        this.#drop(m.problem, `invalid kernel message: ${m.detail}`);
        break;
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
    if (!ack) return;
    // An unusable message of ours is ACKed too, so the kernel keeps flushing (lib/kernel/ack_rule.ts rule 1).
    const version = this.#currentVersion();
    const wait = this.ackGate.whenReleased();
    if (wait) return wait.then(() => this.#ack(version));
    this.#ack(version);
  }

  #ackThenAccept(version: number, m: Extract<KernelMessage, { kind: "batch" }>, onBatch: BatchHandler): void {
    this.#ack(version);
    this.#accept(m, onBatch);
  }

  #accept(m: Extract<KernelMessage, { kind: "batch" }>, onBatch: BatchHandler): void {
    const previous = this.#version;
    this.#version = m.header.version;
    this.#packedVersion = packVersion(m.header.version);
    this.#learn(previous, m.header.version, m.payload);
    const sessions = countSessions(m.payload);
    if (sessions === undefined || sessions === 0) {
      this.#drop(
        "kernel_bad_message",
        sessions === 0 ? "a kernel batch with no session" : "a kernel batch with a malformed entry",
      );
      return;
    }
    this.#handOn(m.payload, sessions, onBatch);
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
    const line = this.#limiter.line(
      `error:${code}`,
      `the kernel answered error ${code}: ${oneLine(message)}`,
    );
    if (line) this.#log.error(line);
  }

  // ---- sending -----------------------------------------------------------------------------------------------

  /** Sends a JOOLD_ACK carrying `version` (packed): the version of the multicast it answers. */
  #ack(version: number): void {
    if (this.#send(this.#acks.ack(version), "JOOLD_ACK")) this.#stats.add("KERNEL_ACKS_SENT");
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
      this.#warn(`send:${what}`, `cannot send ${what} to the kernel: ${errorMessage(error)}`);
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
    const line = this.#limiter.line(key, message);
    if (line) this.#log.warn(line);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
