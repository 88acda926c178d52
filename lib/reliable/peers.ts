/**
 * What this daemon knows of each peer in the reliable mode, and the "in sync" state machine
 * (docs/protocol.md §10.5). Pure: the caller passes the time.
 *
 * In sync with a peer = a replay from it completed since this daemon started (or since its last lost sequence),
 * no sequence of it is missing now, and it was heard lately (within the stale time: what a peer sent while we
 * could not hear it, we cannot know we lack). The daemon is in sync when it is with every live peer, and the
 * start-up grace (the stale time: every live peer's heartbeat heard, even with one lost) has passed.
 * @module
 */
import type { Digest } from "./session_cache.ts";
import { type NackTiming, SequenceTracker } from "./sequence.ts";

/** Where a peer's replay to us stands. */
export type ReplayState = "none" | "requested" | "complete";

/** One peer (one sender id: a restarted daemon is a new peer). */
export class Peer {
  /** Its sequence numbers. */
  readonly sequence: SequenceTracker;
  /** When it was last heard (any frame). */
  lastHeard: number;
  /** Its replay to us. */
  replay: ReplayState = "none";
  /** When the replay was last asked for, or last made progress. */
  replayProgress = 0;
  /**
   * The latest sequence of it we had seen when we asked (every sequence we lost is at or below it): a replay
   * that began at or below it may have been snapshotted before those were lost, so it does not count.
   */
  replayAfter = 0;
  /** Sessions received in the current replay. */
  replaySessions = 0;
  /** Replays from it completed. */
  replaysCompleted = 0;
  /** Resync requests sent to it. */
  resyncRequests = 0;
  /** A sequence was lost since its last complete replay. */
  lostSinceReplay = false;
  /** Its last heartbeat's digest of its own sessions. */
  announced: Digest | undefined;
  /** Its latest sequence by that heartbeat. */
  announcedLatest = 0;

  /** A peer first heard at `now`. */
  constructor(readonly id: number, now: number, timing: NackTiming) {
    this.sequence = new SequenceTracker(timing);
    this.lastHeard = now;
  }

  /** In sync with this peer at `now`, when a peer unheard for `staleMs` is not (module doc). */
  inSync(now: number, staleMs: number): boolean {
    return this.replay === "complete" && !this.lostSinceReplay && this.sequence.missing === 0 &&
      now - this.lastHeard <= staleMs;
  }

  /** Records that `lost` sequences will never come: out of sync until the next complete replay. */
  lost(lost: number): void {
    if (lost <= 0) return;
    this.lostSinceReplay = true;
    this.replay = "none";
  }

  /** Whether a resync request is due at `now` (none asked yet, or the last one made no progress for `patienceMs`). */
  needsRequest(now: number, patienceMs: number): boolean {
    if (this.replay === "complete") return false;
    return this.replay === "none" || now - this.replayProgress > patienceMs;
  }

  /** Records a resync request sent at `now`. */
  requested(now: number): void {
    this.replay = "requested";
    this.replayProgress = now;
    this.replayAfter = this.sequence.latest;
    this.replaySessions = 0;
    this.resyncRequests++;
  }

  /** A replay frame for us arrived at `now`, with `sessions` sessions. */
  replayed(now: number, sessions: number): void {
    this.replayProgress = now;
    this.replaySessions += sessions;
  }

  /**
   * The END of a replay to us that began at sequence `first`. Completes the replay when it answers the current
   * request (it began after everything we had seen when we asked); returns whether it did.
   */
  replayEnded(first: number): boolean {
    if (this.replay !== "requested" || first <= this.replayAfter) return false;
    this.replay = "complete";
    this.lostSinceReplay = false;
    this.replaysCompleted++;
    return true;
  }
}

/** The value of the track file: 0 in sync, `weight` (negative) otherwise. */
export function trackValue(inSync: boolean, weight: number): number {
  return inSync ? 0 : weight;
}

/** In sync with every live peer at `now`, once `graceOver` (module doc). */
export function allInSync(peers: Iterable<Peer>, graceOver: boolean, now: number, staleMs: number): boolean {
  if (!graceOver) return false;
  for (const peer of peers) if (!peer.inSync(now, staleMs)) return false;
  return true;
}
