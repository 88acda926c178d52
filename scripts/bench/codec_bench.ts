/**
 * Codec micro-benchmarks (`bash scripts/deno.sh bench --allow-ffi scripts/bench/codec_bench.ts`; --allow-ffi for
 * the key file's HMAC through libcrypto, as in the daemon): the pure functions on the relay's hot path. Each
 * bench processes one whole batch; `main.ts --only codec` divides deno's avg time by the batch's session count
 * to report ns per session entry.
 * @module
 */
import { validatePayload } from "../../lib/session/payload.ts";
import { decodeEntry, encodeEntry } from "../../lib/session/entries.ts";
import {
  encodeJooldAck,
  encodeJooldAdd,
  parseKernelMessage,
  type RequestContext,
} from "../../lib/jool/messages.ts";
import { DOUBLE_FAMILY_ID } from "../../tests/helpers/kernel_double.ts";
import { batch, multicast, session } from "./fixtures.ts";
import { upstreamWire } from "../../lib/wire.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { AuthenticatedWire, FramedDataWire } from "../../lib/auth/wire.ts";

const C36 = batch(0, 36, "C");
const A10 = batch(0, 10, "A");
const C_ENTRIES = Array.from({ length: 36 }, (_, i) => C36.subarray(i * 40, (i + 1) * 40));
const SESSIONS = Array.from({ length: 36 }, (_, i) => session(i));
const MULTICAST_C36 = multicast(C36);
const CONTEXT: RequestContext = {
  familyId: DOUBLE_FAMILY_ID,
  pid: 4242,
  seq: 0,
  version: { major: 4, minor: 1, revision: 13, dev: 0 },
  instance: "default",
};

/** Keeps results alive so V8 cannot drop the work. */
let sink = 0;
function use(ok: boolean, n: number): void {
  if (!ok) throw new Error("benchmark input was rejected");
  sink = (sink + n) | 0;
}

Deno.bench("validatePayload C×36 (per batch of 36)", { group: "validate", baseline: true }, () => {
  const r = validatePayload(C36, "C");
  use(r.ok, r.ok ? r.sessions : 0);
});

Deno.bench("validatePayload A×10 (per batch of 10)", { group: "validate" }, () => {
  const r = validatePayload(A10, "A");
  use(r.ok, r.ok ? r.sessions : 0);
});

Deno.bench("decodeEntry C×36 (per batch of 36)", { group: "entry" }, () => {
  for (const e of C_ENTRIES) use(decodeEntry(e, "C").ok, 1);
});

Deno.bench("encodeEntry C×36 (per batch of 36)", { group: "entry" }, () => {
  for (const s of SESSIONS) use(true, encodeEntry(s, "C").length);
});

Deno.bench("parseKernelMessage multicast C×36 (per batch of 36)", { group: "message" }, () => {
  const m = parseKernelMessage(MULTICAST_C36, DOUBLE_FAMILY_ID);
  use(m.kind === "batch", 1);
});

Deno.bench("encodeJooldAdd C×36 (per batch of 36)", { group: "message" }, () => {
  use(true, encodeJooldAdd(CONTEXT, C36).length);
});

Deno.bench("encodeJooldAck (per batch of 36)", { group: "message" }, () => {
  use(true, encodeJooldAck(CONTEXT).length);
});

// The wire codecs of one datagram of 36 sessions, each way: upstream's (the batch verbatim) and with a "key
// file" (a DATA frame, sealed; opened, checked, then validated) — authentication's CPU cost per datagram.
const KEY = new Uint8Array(32).fill(0x5a);
const sealingWire = new AuthenticatedWire(new FramedDataWire(), new Authenticator([KEY]));
/** Sealed datagrams with rising frame counters, opened in turn (an opened counter is refused a second time). */
const SEALED = Array.from({ length: 1 << 14 }, () => sealingWire.encode(C36).slice());
let openingWire = new AuthenticatedWire(new FramedDataWire(), new Authenticator([KEY]));
let nextSealed = 0;

Deno.bench("wire encode upstream C×36 (per batch of 36)", { group: "wire", baseline: true }, () => {
  use(true, upstreamWire.encode(C36).length);
});

Deno.bench("wire encode key file C×36 (per batch of 36)", { group: "wire" }, () => {
  use(true, sealingWire.encode(C36).length);
});

Deno.bench("wire decode upstream C×36 (per batch of 36)", { group: "wire" }, () => {
  const r = upstreamWire.decode(C36, "C");
  use(r.ok, r.ok ? r.sessions : 0);
});

Deno.bench("wire decode key file C×36 (per batch of 36)", { group: "wire" }, () => {
  if (nextSealed === SEALED.length) {
    // Every counter taken: a new receiver (its windows empty), outside the other 16 383 iterations' cost.
    openingWire = new AuthenticatedWire(new FramedDataWire(), new Authenticator([KEY]));
    nextSealed = 0;
  }
  const r = openingWire.decode(SEALED[nextSealed++], "C");
  use(r.ok === true, r.ok === true ? r.sessions : 0);
});

addEventListener("unload", () => {
  if (sink === 0x7fffffff) console.log(sink);
});
