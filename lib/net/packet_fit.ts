/**
 * What fits one packet on the sync link (docs/protocol.md §10.7): pure arithmetic over the link's MTU, the
 * wire's per-datagram overhead and the session format, and the split of a payload at entry boundaries.
 *
 * Why it matters: a UDP datagram larger than the link carries in one packet leaves as IP fragments — two
 * packets' worth of work for both hosts (BENCHMARKS.md "Authentication"), and IPv6 fragments are what
 * firewalls drop. Jool ≥ 4.1.13 fills a batch with 36 format-C entries (1 440 bytes), sized so that the
 * upstream datagram fits one IPv6 packet at MTU 1 500; a framed wire's 16-byte header and a key's 48-byte
 * trailer push it over.
 * @module
 */
import { ENTRY_SIZE, type SessionFormat } from "../session/format.ts";
import { MAX_PAYLOAD } from "../session/payload.ts";

/** Bytes of the IP and UDP headers in front of a datagram's payload (no IP options, no extension headers). */
export const IP_UDP_HEADER_BYTES: Readonly<Record<4 | 6, number>> = { 4: 20 + 8, 6: 40 + 8 };

/** The MTU assumed when the sync link's is unknown: Ethernet's, the smallest common one on a sync link. */
export const DEFAULT_LINK_MTU = 1500;

/** The sync link: the interface the daemon sends on, and its MTU. */
export interface SyncLink {
  /** Interface name, when known (`out interface`, else `in interface`, else the group's scope). */
  readonly name?: string;
  /** Its MTU; {@link DEFAULT_LINK_MTU} when it could not be read. */
  readonly mtu: number;
  /** Whether `mtu` was read from the interface (false: the default). */
  readonly measured: boolean;
  /** The socket's address family. */
  readonly family: 4 | 6;
}

/** UDP payload bytes one packet carries on `link`. */
export function packetPayloadLimit(link: SyncLink): number {
  return link.mtu - IP_UDP_HEADER_BYTES[link.family];
}

/**
 * The largest datagram that leaves in one packet of `link` and that every receiver reads whole (upstream reads
 * 2 048 bytes, `MAX_PAYLOAD`): on a link of MTU 9 000 a datagram is still held to 2 048.
 */
export function datagramLimit(link: SyncLink): number {
  return Math.min(packetPayloadLimit(link), MAX_PAYLOAD);
}

/**
 * Splits `payload` (whole entries of `entryBytes` each) into views of at most `maxBytes`, each of whole
 * entries, in order, each but the last as full as it can be. A payload within `maxBytes` comes back alone (the
 * same array). Throws RangeError when `payload` is not whole entries or `maxBytes` holds no entry.
 */
export function splitAtEntries(payload: Uint8Array, entryBytes: number, maxBytes: number): Uint8Array[] {
  if (payload.length <= maxBytes) return [payload];
  if (entryBytes <= 0 || payload.length % entryBytes !== 0) {
    throw new RangeError(`${payload.length} bytes are not whole ${entryBytes}-byte entries`);
  }
  const piece = Math.floor(maxBytes / entryBytes) * entryBytes;
  if (piece === 0) throw new RangeError(`${maxBytes} bytes hold no ${entryBytes}-byte entry`);
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < payload.length; at += piece) pieces.push(payload.subarray(at, at + piece));
  return pieces;
}

/** The kernel batch size that makes every datagram of a wire fit one packet (see {@link batchFit}). */
export interface BatchFit {
  /** Payload bytes (entries) a datagram may carry: {@link datagramLimit} minus the wire's overhead. */
  readonly payloadBytes: number;
  /** Entries of the format that fit in `payloadBytes`: the `ss-max-sessions-per-packet` to set. */
  readonly sessions: number;
}

/** How many bytes and entries of `format` fit one packet of `link` around a wire's `overhead` bytes. */
export function batchFit(link: SyncLink, overhead: number, format: SessionFormat): BatchFit {
  const payloadBytes = datagramLimit(link) - overhead;
  return { payloadBytes, sessions: Math.max(0, Math.floor(payloadBytes / ENTRY_SIZE[format])) };
}

/**
 * The Jool setting that makes a kernel batch fit one packet, as an operator types it: from 4.1.11 a batch is
 * counted in sessions (`ss-max-sessions-per-packet`); 4.1.9 and 4.1.10 (format A, as 4.1.11) size it in bytes
 * (`ss-max-payload`, which also holds the message's own headers, so the entries stay below it).
 */
export function fitSetting(instance: string, fit: BatchFit, format: SessionFormat): string {
  const sessions = `jool -i ${instance} global update ss-max-sessions-per-packet ${fit.sessions}`;
  return format === "A"
    ? `${sessions} (Jool 4.1.11), or jool -i ${instance} global update ss-max-payload ${fit.payloadBytes} ` +
      "(4.1.9, 4.1.10)"
    : sessions;
}

/** How `link` was found, for logs: "eth0 (MTU 1500)" or "an unknown interface (MTU 1500 assumed)". */
export function linkText(link: SyncLink): string {
  return link.measured
    ? `${link.name} (MTU ${link.mtu})`
    : `${link.name ?? "an unknown interface"} (MTU ${link.mtu} assumed)`;
}

/**
 * `--check`'s line for a framed wire adding `overhead` bytes: the link, and the largest batch that fits one
 * packet once framed, in bytes and in sessions of each format (the daemon learns its kernel's format later).
 */
export function describeFit(link: SyncLink, overhead: number): string {
  const fits = (["C", "B", "A"] as const).map((format) =>
    `${format} ${batchFit(link, overhead, format).sessions}`
  );
  return `fits one packet: ${linkText(link)}, ${packetPayloadLimit(link)} bytes of UDP payload; framed ` +
    `(+${overhead} bytes), a batch of at most ${datagramLimit(link) - overhead} bytes: sessions of format ` +
    `${fits.join(", ")} (ss-max-sessions-per-packet no higher than that; Jool's defaults: C 36, B and A 10)`;
}
