/**
 * Codec micro-benchmarks (`bash scripts/deno.sh bench scripts/bench/codec_bench.ts`): the pure functions on the
 * relay's hot path. Each bench processes one whole batch; `main.ts --only codec` divides deno's avg time by
 * the batch's session count to report ns per session entry.
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

addEventListener("unload", () => {
  if (sink === 0x7fffffff) console.log(sink);
});
