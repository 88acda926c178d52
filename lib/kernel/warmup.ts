/**
 * JIT warm-up of the per-batch path. Jool's kernel sends one batch per ACK, so the daemon's turnaround on the
 * first batches of a burst decides how many sessions a 4.1.9 kernel (one-batch queue, spec §2.3) keeps or
 * loses. A fresh V8 runs that path in its interpreter until it has been called many times; on a slow router
 * (or under emulation) the first bursts then see several times the steady-state turnaround. Running the pure
 * codecs on synthetic data at start-up lets V8 compile and optimize them before the first real batch.
 * No I/O: nothing is sent anywhere.
 * @module
 */
import { DEFAULT_REQUEST_VERSION, type JoolVersion } from "../jool/header.ts";
import { encodeJooldAck, encodeJooldAdd, parseKernelMessage } from "../jool/messages.ts";
import { splitMessages } from "../jool/netlink.ts";
import { encodeEntry, type SessionEntry } from "../session/entries.ts";
import type { SessionFormat } from "../session/format.ts";
import { countSessions, validatePayload } from "../session/payload.ts";

/** A documentation-address UDP session used only as warm-up input. */
const SAMPLE: SessionEntry = {
  proto: 1,
  state: 0,
  timer: 0,
  expiration: 60_000,
  src6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
  src6Port: 1000,
  src4: Uint8Array.of(192, 0, 2, 1),
  src4Port: 2000,
  dst4: Uint8Array.of(203, 0, 113, 7),
  dst4Port: 53,
  dst6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 203, 0, 113, 7),
  dst6Port: 53,
};

/**
 * Runs parse/count/validate/encode `rounds` times on a synthetic 10-session batch of `format`.
 * Returns the number of sessions validated (so the work cannot be optimized away).
 */
export function warmUpBatchPath(
  format: SessionFormat,
  version: JoolVersion = DEFAULT_REQUEST_VERSION,
  rounds = 2000,
): number {
  const entry = encodeEntry(SAMPLE, format);
  const payload = new Uint8Array(entry.length * 10);
  for (let i = 0; i < 10; i++) payload.set(entry, i * entry.length);
  const context = { familyId: 0x7fff, pid: 0, seq: 0, version, instance: "warm-up" };
  const multicast = encodeJooldAdd(context, payload);
  let sessions = 0;
  for (let i = 0; i < rounds; i++) {
    for (const message of splitMessages(multicast).messages) {
      const parsed = parseKernelMessage(message, context.familyId);
      if (parsed.kind === "batch") sessions += countSessions(parsed.payload) ?? 0;
    }
    const valid = validatePayload(payload, format);
    if (valid.ok) sessions += valid.sessions;
    encodeJooldAck({ ...context, seq: i });
    encodeJooldAdd({ ...context, seq: i }, payload);
  }
  return sessions;
}
