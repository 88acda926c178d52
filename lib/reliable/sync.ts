/**
 * The reliable mode (`"mode": "reliable"`, docs/protocol.md §10, docs/design.md "Reliable mode"): a
 * {@link WireCodec} that frames each kernel batch with the sender's id and sequence, tracks every peer's
 * sequence, NACKs gaps and answers NACKs from the resend buffer, keeps the session cache, replays it to a peer
 * that asks, sends heartbeats with a digest, and keeps the in-sync state and the track file.
 *
 * The relay calls {@link ReliableSync.encode} and {@link ReliableSync.decode} as with any codec; the rest
 * (heartbeats, NACKs, resends, replays) leaves through the `send` given to {@link ReliableSync.start}.
 * @module
 */
import type { Logger } from "../logger.ts";
import type { ReliableSettings } from "../config/types.ts";
import { COALESCED_MAX_BYTES, type NetSide } from "../relay.ts";
import { ENTRY_SIZE, type SessionFormat } from "../session/format.ts";
import { validatePayload } from "../session/payload.ts";
import type { Stats } from "../stats.ts";
import type { WireCodec, WireDecodeResult, WireHandled } from "../wire.ts";
import { concatBytes } from "../jool/netlink.ts";
import {
  decodeFrame,
  encodeData,
  encodeHeartbeat,
  encodeRange,
  encodeReplay,
  encodeReplayEnd,
  encodeResyncRequest,
  FRAME_FLAG_AUTH,
  FRAME_HEADER_BYTES,
  FRAME_TYPE,
} from "./frame.ts";
import { LivePacer } from "./pacing.ts";
import { allInSync, Peer, trackValue } from "./peers.ts";
import { ResendBuffer } from "./resend_buffer.ts";
import type { NackTiming } from "./sequence.ts";
import { SessionCache } from "./session_cache.ts";
import { TrackFile } from "./track_file.ts";
import { AUTH_TRAILER_BYTES } from "../auth/frame.ts";

/** How often the timers run (NACKs, liveness, heartbeats, the track file). */
const TICK_MS = 20;
/** A peer unheard for this many heartbeat intervals is not in sync (two heartbeats lost in a row). */
const STALE_HEARTBEATS = 2.5;
/** Peer timeout (then it is gone, and no longer counts), in heartbeat intervals. */
const PEER_TIMEOUT_HEARTBEATS = 5;
/** NACK timing: wait 30 ms for reordering, re-NACK every 200 ms, five times, then lost. */
const NACK_TIMING_BASE = { reorderMs: 30, retryMs: 200, maxNacks: 5 };
/** A resync request is repeated when its replay made no progress for this long. */
const REPLAY_PATIENCE_MS = 2000;
/** The most sequences one NACK is answered for (a larger range is answered in part, the rest NACKed again). */
const NACK_ANSWER_MAX = 256;

/** Where the reliable mode sends and how busy the live path is. */
export interface SyncIo {
  /** Sends one datagram to the group. */
  send(datagram: Uint8Array, sessions?: number): Promise<boolean>;
  /** Kernel batches waiting for the network: a replay waits while there are any. */
  backlog(): number;
}

/** Counters of what this daemon sent in the reliable mode. */
export interface SentCounters {
  /** Sequenced frames sent (DATA, REPLAY, REPLAY_END). */
  sequenced: number;
  /** Frames sent again for a NACK. */
  resent: number;
  /** Sequences NACKed to us that the resend buffer no longer had (answered UNAVAILABLE). */
  unavailable: number;
  /** Heartbeats sent. */
  heartbeats: number;
  /** Replays sent (one per requesting peer). */
  replays: number;
  /** Sessions sent in replays. */
  replaySessions: number;
  /** Resync requests sent. */
  resyncRequests: number;
  /** Peers that appeared. */
  peersSeen: number;
  /** Peers that went silent for a peer timeout. */
  peersGone: number;
  /** Own frames (our id) received: an id collision or a looped-back datagram. */
  ownFrames: number;
  /** Heartbeats whose digest differed from what we hold of that peer, with nothing of it missing. */
  digestMismatches: number;
}

/** The reliable mode's engine and codec. */
export class ReliableSync implements WireCodec {
  /** Codec name, shown in the stats JSON. */
  readonly name = "reliable";
  /** A DATA frame's header around each kernel batch. */
  readonly overhead: number = FRAME_HEADER_BYTES;
  #id: number;
  #seq = 0;
  readonly #resend: ResendBuffer;
  #cache: SessionCache | undefined;
  readonly #peers = new Map<number, Peer>();
  readonly #timing: NackTiming;
  readonly #peerTimeoutMs: number;
  readonly #staleMs: number;
  readonly #track: TrackFile | undefined;
  readonly #startedAt: number;
  #io: SyncIo | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastHeartbeat = -Infinity;
  #lastSweep = 0;
  readonly #replayQueue = new Set<number>();
  #replaying: Promise<void> | undefined;
  #tokens = 0;
  #tokensAt = 0;
  #stopped = false;
  readonly #pacer = new LivePacer();
  /** Counters of what was sent. */
  readonly sent: SentCounters = {
    sequenced: 0,
    resent: 0,
    unavailable: 0,
    heartbeats: 0,
    replays: 0,
    replaySessions: 0,
    resyncRequests: 0,
    peersSeen: 0,
    peersGone: 0,
    ownFrames: 0,
    digestMismatches: 0,
  };

  /**
   * The engine for `settings`; `format` is the local kernel's session format once known; `now` the clock (ms).
   */
  constructor(
    private readonly settings: ReliableSettings,
    private readonly deps: {
      readonly stats: Stats;
      readonly log: Logger;
      readonly format: () => SessionFormat | undefined;
      readonly now?: () => number;
      /** Frames arrive with their authentication trailer checked and cut off (a `"key file"`, `lib/auth/`). */
      readonly authenticated?: boolean;
      /**
       * UDP payload bytes one packet of the sync link carries (`NetChannel.link`); a REPLAY frame, sealed,
       * stays within it. Default: 1 452 (an IPv6 packet at MTU 1 500).
       */
      readonly packetLimit?: number;
    },
  ) {
    this.#id = newSenderId();
    this.#resend = new ResendBuffer(settings.resendBuffer);
    this.#timing = { ...NACK_TIMING_BASE, maxGap: settings.resendBuffer };
    this.#peerTimeoutMs = settings.heartbeatMs * PEER_TIMEOUT_HEARTBEATS;
    this.#staleMs = settings.heartbeatMs * STALE_HEARTBEATS;
    this.#track = settings.trackFile === undefined ? undefined : new TrackFile(settings.trackFile, deps.log);
    this.#startedAt = this.#now();
    this.#track?.update(settings.trackWeight);
  }

  /** This daemon's sender id (random per start). */
  get id(): number {
    return this.#id;
  }

  #now(): number {
    return this.deps.now ? this.deps.now() : performance.now();
  }

  /**
   * Starts the timers and announces this daemon (a heartbeat at once, so peers ask for its table). With
   * `timers` false the caller runs {@link tick} itself (a test's clock).
   */
  start(io: SyncIo, timers = true): void {
    this.#io = io;
    this.deps.log.info(
      `reliable mode: sender id ${hex(this.#id)}, heartbeat every ${this.settings.heartbeatMs} ms` +
        (this.#track ? `, track file ${this.#track.path}` : ""),
    );
    if (timers) this.#timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  /** Stops the timers and any replay; the track file says "not in sync" (nobody keeps the table up to date). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#replayQueue.clear();
    await this.#replaying;
    this.#track?.update(this.settings.trackWeight);
  }

  /** The local format's cache (made on first use: the format is known once the kernel's version is). */
  #cacheFor(format: SessionFormat): SessionCache {
    if (!this.#cache) {
      this.#cache = new SessionCache(format, this.settings.sessionCache, () => this.#now());
    }
    return this.#cache;
  }

  #nextSeq(): number {
    if (this.#seq === 0xffff_ffff) {
      // Sequences do not wrap: a new id is a restart to the peers, which then resync with us.
      this.#id = newSenderId();
      this.#seq = 0;
      this.#pacer.restart();
      this.deps.log.info(`reliable mode: sequence space used up; new sender id ${hex(this.#id)}`);
    }
    this.sent.sequenced++;
    return ++this.#seq;
  }

  /** Frames a kernel batch (DATA), keeps it for NACKs, and caches its sessions as ours. */
  encode(payload: Uint8Array): Uint8Array {
    const format = this.deps.format();
    if (format !== undefined) this.#cacheFor(format).put(payload, this.#id);
    const seq = this.#nextSeq();
    const frame = encodeData(this.#id, seq, payload);
    this.#resend.keep(seq, frame);
    return frame;
  }

  /** Takes one datagram: a payload for the kernel, a drop, or a control frame handled here. */
  decode(datagram: Uint8Array, format: SessionFormat): WireDecodeResult | WireHandled {
    const decoded = decodeFrame(datagram, this.deps.authenticated ? FRAME_FLAG_AUTH : 0);
    if (!decoded.ok) {
      const fix = decoded.reason === "net_unframed"
        ? '; set "mode": "reliable" on every daemon of the group (or "upstream" on all)'
        : "";
      return { ok: false, reason: decoded.reason, detail: decoded.detail + fix };
    }
    const frame = decoded.frame;
    const now = this.#now();
    if (frame.sender === this.#id) {
      this.sent.ownFrames++;
      return CONSUMED;
    }
    const peer = this.#peer(frame.sender, now);
    switch (frame.type) {
      case FRAME_TYPE.DATA: {
        if (this.#accept(peer, frame.seq, now) === "duplicate") return CONSUMED;
        return this.#deliver(frame.entries, format, frame.sender);
      }
      case FRAME_TYPE.REPLAY: {
        if (this.#accept(peer, frame.seq, now) === "duplicate") return CONSUMED;
        if (frame.target !== this.#id && frame.target !== 0) return CONSUMED;
        const result = this.#deliver(frame.entries, format, frame.origin);
        if (result.ok) peer.replayed(now, result.sessions);
        return result;
      }
      case FRAME_TYPE.REPLAY_END: {
        if (this.#accept(peer, frame.seq, now) === "duplicate") return CONSUMED;
        if (frame.target === this.#id && peer.replayEnded(frame.first)) {
          this.deps.log.info(
            `reliable mode: replay from ${
              hex(peer.id)
            } complete (${peer.replaySessions} sessions received, ` +
              `${frame.sessions} sent)`,
          );
        }
        return CONSUMED;
      }
      case FRAME_TYPE.NACK:
        this.#observe(peer, frame.latest, now);
        if (frame.target === this.#id) {
          this.#pacer.nacked(frame.first, frame.last, now);
          this.#answerNack(frame.sender, frame.first, frame.last);
        }
        return CONSUMED;
      case FRAME_TYPE.UNAVAILABLE:
        this.#observe(peer, frame.latest, now);
        if (frame.target === this.#id) {
          const lost = peer.sequence.forget(frame.first, frame.last);
          this.#lost(peer, lost, "no longer in its resend buffer");
        }
        return CONSUMED;
      case FRAME_TYPE.HEARTBEAT:
        this.#observe(peer, frame.latest, now);
        peer.announced = { count: frame.count, hash: frame.hash };
        peer.announcedLatest = frame.latest;
        this.#checkDigest(peer);
        return CONSUMED;
      case FRAME_TYPE.RESYNC_REQUEST:
        this.#observe(peer, frame.latest, now);
        if (frame.target === this.#id || frame.target === 0) this.#queueReplay(frame.sender);
        return CONSUMED;
    }
  }

  /** Takes a sequenced frame; a jump past what the sender can resend is a loss at once (not at the next tick). */
  #accept(peer: Peer, seq: number, now: number): ReturnType<Peer["sequence"]["accept"]> {
    const arrival = peer.sequence.accept(seq, now);
    this.#lost(peer, peer.sequence.takeJumpLosses(), "a gap larger than the resend buffer");
    return arrival;
  }

  /** The sender's latest sequence, as any unsequenced frame carries it. */
  #observe(peer: Peer, latest: number, now: number): void {
    peer.sequence.observeLatest(latest, now);
    this.#lost(peer, peer.sequence.takeJumpLosses(), "a gap larger than the resend buffer");
  }

  #deliver(entries: Uint8Array, format: SessionFormat, origin: number): WireDecodeResult {
    const result = validatePayload(entries, format);
    if (!result.ok) return result;
    this.#cacheFor(format).put(entries, origin);
    return { ok: true, payload: entries, sessions: result.sessions };
  }

  #peer(id: number, now: number): Peer {
    let peer = this.#peers.get(id);
    if (!peer) {
      peer = new Peer(id, now, this.#timing);
      this.#peers.set(id, peer);
      this.sent.peersSeen++;
      this.deps.log.info(`reliable mode: peer ${hex(id)} appeared; asking for its table`);
      // Asked at once rather than at the next tick: the sooner, the fewer live batches the replay repeats.
      this.#request(peer, now);
    }
    peer.lastHeard = now;
    return peer;
  }

  #request(peer: Peer, now: number): void {
    peer.requested(now);
    this.sent.resyncRequests++;
    this.#sendControl(encodeResyncRequest(this.#id, this.#seq, peer.id));
  }

  #lost(peer: Peer, lost: number, why: string): void {
    if (lost <= 0) return;
    peer.lost(lost);
    this.deps.log.warn(
      `reliable mode: ${lost} datagram(s) of peer ${hex(peer.id)} lost (${why}); asking for its table again`,
    );
  }

  #checkDigest(peer: Peer): void {
    // Compared only when nothing of the peer is missing or in flight by its own count.
    if (!this.#cache || !peer.announced || peer.sequence.missing > 0) return;
    if (peer.sequence.latest !== peer.announcedLatest) return;
    const held = this.#cache.digest(peer.id);
    if (held.count !== peer.announced.count || held.hash !== peer.announced.hash) {
      this.sent.digestMismatches++;
    }
  }

  #answerNack(requester: number, first: number, last: number): void {
    const end = Math.min(last, first + NACK_ANSWER_MAX - 1);
    let missingFrom: number | undefined;
    for (let seq = first; seq <= end; seq++) {
      const frame = this.#resend.get(seq);
      if (frame) {
        this.sent.resent++;
        this.#sendControl(frame);
      } else {
        missingFrom ??= seq;
        this.sent.unavailable++;
      }
    }
    if (missingFrom !== undefined) {
      // What it asks for is older than the buffer (or was never sent): it must resync.
      this.#sendControl(
        encodeRange(FRAME_TYPE.UNAVAILABLE, this.#id, this.#seq, requester, missingFrom, end),
      );
    }
  }

  #sendControl(datagram: Uint8Array): void {
    if (!this.#io || this.#stopped) return;
    this.#pacer.sent(this.#now());
    this.#io.send(datagram).catch((error) => this.deps.log.error(`reliable mode: send: ${error}`));
  }

  /** The timers' work, every 20 ms: peer liveness, NACKs and losses, resync requests, heartbeat, expiry, track file. */
  tick(): void {
    if (this.#stopped) return;
    const now = this.#now();
    this.#pacer.tick(now);
    for (const peer of [...this.#peers.values()]) {
      if (now - peer.lastHeard > this.#peerTimeoutMs) {
        this.#peers.delete(peer.id);
        this.sent.peersGone++;
        this.deps.log.info(`reliable mode: peer ${hex(peer.id)} silent for ${this.#peerTimeoutMs} ms; gone`);
        continue;
      }
      const plan = peer.sequence.due(now);
      for (const [first, last] of plan.nack) {
        this.#sendControl(encodeRange(FRAME_TYPE.NACK, this.#id, this.#seq, peer.id, first, last));
      }
      this.#lost(peer, plan.lost, "NACKs unanswered");
      this.#lost(peer, peer.sequence.takeJumpLosses(), "a gap larger than the resend buffer");
      if (peer.needsRequest(now, REPLAY_PATIENCE_MS)) this.#request(peer, now);
    }
    if (now - this.#lastHeartbeat >= this.settings.heartbeatMs) {
      this.#lastHeartbeat = now;
      const own = this.#cache?.digest(this.#id) ?? { count: 0, hash: 0 };
      this.sent.heartbeats++;
      this.#sendControl(encodeHeartbeat(this.#id, this.#seq, own.count, own.hash));
    }
    if (this.#cache && now - this.#lastSweep >= 1000) {
      this.#lastSweep = now;
      this.#cache.sweep();
    }
    this.#track?.update(trackValue(this.inSync, this.settings.trackWeight));
  }

  /** In sync with every live peer (docs/protocol.md §10.5). */
  get inSync(): boolean {
    const now = this.#now();
    return allInSync(this.#peers.values(), now - this.#startedAt >= this.#staleMs, now, this.#staleMs);
  }

  #queueReplay(target: number): void {
    if (this.#stopped) return;
    this.#replayQueue.add(target);
    this.#replaying ??= this.#replayLoop().finally(() => this.#replaying = undefined);
  }

  async #replayLoop(): Promise<void> {
    while (this.#replayQueue.size > 0 && !this.#stopped) {
      const target: number = this.#replayQueue.values().next().value!;
      this.#replayQueue.delete(target);
      // The cache is snapshotted now, when everything up to #seq has been sent: the END says so (the
      // requester counts the replay only if that covers every sequence it lost, docs/protocol.md §10.4).
      const first = this.#seq + 1;
      const sessions = await this.#replayTo(target);
      if (this.#stopped) return;
      await this.#paced(encodeReplayEnd(this.#id, this.#nextSeq(), target, sessions, first), undefined);
      this.sent.replays++;
      this.deps.log.info(`reliable mode: replayed ${sessions} sessions to ${hex(target)}`);
    }
  }

  /** Sends the cache to `target` in REPLAY frames, by origin; returns the sessions sent. */
  async #replayTo(target: number): Promise<number> {
    const cache = this.#cache;
    if (!cache) return 0;
    const size = ENTRY_SIZE[cache.format];
    // The frame around the entries, and its authentication trailer, fit one packet of the link (and no more
    // than a kernel batch, 1 452 bytes): a REPLAY of 1 452 bytes of entries would go as two fragments.
    const budget = Math.min(COALESCED_MAX_BYTES, this.deps.packetLimit ?? COALESCED_MAX_BYTES) -
      REPLAY_OVERHEAD -
      (this.deps.authenticated ? AUTH_TRAILER_BYTES : 0);
    const perFrame = Math.max(1, Math.floor(budget / size));
    let sent = 0;
    for (const [origin, slots] of cache.snapshot(target)) {
      let parts: Uint8Array[] = [];
      for (const slot of slots) {
        if (this.#stopped) return sent;
        const entry = cache.entryToSend(slot);
        if (!entry) continue;
        parts.push(entry);
        if (parts.length === perFrame) {
          sent += await this.#sendReplay(target, origin, parts);
          parts = [];
        }
      }
      if (parts.length > 0) sent += await this.#sendReplay(target, origin, parts);
    }
    return sent;
  }

  async #sendReplay(target: number, origin: number, parts: Uint8Array[]): Promise<number> {
    const entries = concatBytes(parts);
    const frame = encodeReplay(this.#id, this.#nextSeq(), target, origin, entries);
    await this.#paced(frame, parts.length);
    this.sent.replaySessions += parts.length;
    return parts.length;
  }

  /**
   * Sends a sequenced replay frame when live batches are not waiting and the replay rate allows, and keeps it
   * for NACKs.
   */
  async #paced(frame: Uint8Array, sessions: number | undefined): Promise<void> {
    const io = this.#io;
    if (!io) return;
    while (!this.#stopped) {
      const now = this.#now();
      // A token bucket of one tick's worth of datagrams: bursts no longer than a tick.
      const rate = this.settings.replayRate / 1000;
      this.#tokens = Math.min(this.#tokens + (now - this.#tokensAt) * rate, Math.max(1, rate * TICK_MS));
      this.#tokensAt = now;
      if (this.#tokens >= 1 && io.backlog() === 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.ceil((1 - this.#tokens) / rate))));
    }
    if (this.#stopped) return;
    this.#tokens--;
    const seq = new DataView(frame.buffer, frame.byteOffset).getUint32(12, false);
    this.#resend.keep(seq, frame);
    this.#pacer.sent(this.#now());
    await io.send(frame, sessions);
  }

  /**
   * `net` with its live sends paced (lib/reliable/pacing.ts): a send waits while peers' NACKs say we overrun
   * them. Receives are `net`'s own.
   */
  paced(net: NetSide): NetSide {
    return {
      send: async (datagram, sessions) => {
        for (let wait = this.#pacer.delay(this.#now()); wait > 0; wait = this.#pacer.delay(this.#now())) {
          if (this.#stopped) break;
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
        this.#pacer.sent(this.#now());
        return net.send(datagram, sessions);
      },
      receive: () => net.receive(),
    };
  }

  /** The reliable mode's state for the stats JSON. */
  status(): Record<string, unknown> {
    const now = this.#now();
    const cache = this.#cache;
    return {
      id: hex(this.#id),
      inSync: this.inSync,
      trackFile: this.#track ? { path: this.#track.path, value: this.#track.value ?? null } : null,
      sequence: this.#seq,
      sent: { ...this.sent },
      pacing: {
        rate: finiteOrNull(this.#pacer.rate),
        measured: Math.round(this.#pacer.measured),
        ...this.#pacer.counters,
      },
      cache: cache
        ? {
          sessions: cache.size,
          capacity: cache.capacity,
          own: cache.digest(this.#id).count,
          ...cache.counters,
        }
        : { sessions: 0, capacity: this.settings.sessionCache, own: 0 },
      peers: [...this.#peers.values()].map((peer) => {
        const held = cache?.digest(peer.id) ?? { count: 0, hash: 0 };
        return {
          id: hex(peer.id),
          inSync: peer.inSync(now, this.#staleMs),
          replay: peer.replay,
          replaysCompleted: peer.replaysCompleted,
          resyncRequests: peer.resyncRequests,
          lastHeardMs: Math.round(now - peer.lastHeard),
          expected: peer.sequence.expected ?? null,
          missing: peer.sequence.missing,
          ...peer.sequence.counters,
          announced: peer.announced ?? null,
          held,
        };
      }),
    };
  }

  /** The reliable mode's Prometheus lines. */
  prometheus(): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP joold_reliable_${name} ${help}.`, `# TYPE joold_reliable_${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`joold_reliable_${name}${labels} ${value}`);
    };
    const peers = [...this.#peers.values()];
    const byPeer = (value: (peer: Peer) => number): [string, number][] =>
      peers.map((peer) => [`{peer="${hex(peer.id)}"}`, value(peer)]);
    metric("in_sync", "gauge", "1 when in sync with every live peer", [["", this.inSync ? 1 : 0]]);
    metric("peers", "gauge", "Live peers", [["", peers.length]]);
    const now = this.#now();
    metric(
      "peer_in_sync",
      "gauge",
      "1 when in sync with the peer",
      byPeer((p) => p.inSync(now, this.#staleMs) ? 1 : 0),
    );
    for (const key of ["gaps", "duplicates", "reordered", "recovered", "lost", "nacks"] as const) {
      metric(
        `peer_${key}_total`,
        "counter",
        `Sequences of the peer: ${key}`,
        byPeer((p) => p.sequence.counters[key]),
      );
    }
    metric("cache_sessions", "gauge", "Sessions in the session cache", [["", this.#cache?.size ?? 0]]);
    metric("cache_full_total", "counter", "Sessions not cached because the cache was full", [[
      "",
      this.#cache?.counters.full ?? 0,
    ]]);
    for (const [key, value] of Object.entries(this.sent)) {
      const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      metric(`${name}_total`, "counter", `Reliable mode: ${name.replaceAll("_", " ")}`, [["", value]]);
    }
    return lines.join("\n") + "\n";
  }
}

const CONSUMED: WireHandled = { ok: "handled" };

/** Bytes a REPLAY frame adds around its entries. */
const REPLAY_OVERHEAD = encodeReplay(1, 1, 0, 1, new Uint8Array(0)).length;

/** A random non-zero 32-bit id. */
function newSenderId(): number {
  const id = crypto.getRandomValues(new Uint32Array(1))[0];
  return id === 0 ? 1 : id;
}

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? Math.round(value) : null;
}

function hex(id: number): string {
  return id.toString(16).padStart(8, "0");
}
