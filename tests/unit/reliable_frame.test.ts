/** The reliable mode's frame codec (docs/protocol.md §10.1): byte vectors both ways, every malformed header. */
import { assertEquals } from "../helpers/assert.ts";
import {
  decodeFrame,
  encodeData,
  encodeHeartbeat,
  encodeRange,
  encodeReplay,
  encodeReplayEnd,
  encodeResyncRequest,
  FRAME_FLAG_AUTH,
  FRAME_TYPE,
  hasFrameMagic,
} from "../../lib/reliable/frame.ts";
import { validatePayload } from "../../lib/session/payload.ts";
import { upstreamWire } from "../../lib/wire.ts";
import { sessionEntry } from "../helpers/kernel_messages.ts";

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const unhex = (text: string) => Uint8Array.from(text.split(" ").filter(Boolean), (b) => parseInt(b, 16));

Deno.test("frame: DATA byte vector", () => {
  const frame = encodeData(0x01020304, 0x0a0b0c0d, Uint8Array.of(0xaa, 0xbb));
  assertEquals(hex(frame), "4a 44 52 53 01 01 00 00 01 02 03 04 0a 0b 0c 0d aa bb");
  const decoded = decodeFrame(frame);
  assertEquals(decoded, {
    ok: true,
    frame: { type: 1, sender: 0x01020304, seq: 0x0a0b0c0d, entries: Uint8Array.of(0xaa, 0xbb) },
  });
});

Deno.test("frame: REPLAY, REPLAY_END, NACK, UNAVAILABLE, HEARTBEAT, RESYNC_REQUEST byte vectors round-trip", () => {
  const vectors: [Uint8Array, string, unknown][] = [
    [
      encodeReplay(7, 8, 9, 10, Uint8Array.of(0xcc)),
      "4a 44 52 53 01 02 00 00 00 00 00 07 00 00 00 08 00 00 00 09 00 00 00 0a cc",
      { type: 2, sender: 7, seq: 8, target: 9, origin: 10, entries: Uint8Array.of(0xcc) },
    ],
    [
      encodeReplayEnd(7, 9, 5, 300, 4),
      "4a 44 52 53 01 03 00 00 00 00 00 07 00 00 00 09 00 00 00 05 00 00 01 2c 00 00 00 04",
      { type: 3, sender: 7, seq: 9, target: 5, sessions: 300, first: 4 },
    ],
    [
      encodeRange(FRAME_TYPE.NACK, 7, 40, 5, 11, 12),
      "4a 44 52 53 01 04 00 00 00 00 00 07 00 00 00 28 00 00 00 05 00 00 00 0b 00 00 00 0c",
      { type: 4, sender: 7, latest: 40, target: 5, first: 11, last: 12 },
    ],
    [
      encodeRange(FRAME_TYPE.UNAVAILABLE, 7, 40, 5, 1, 2),
      "4a 44 52 53 01 07 00 00 00 00 00 07 00 00 00 28 00 00 00 05 00 00 00 01 00 00 00 02",
      { type: 7, sender: 7, latest: 40, target: 5, first: 1, last: 2 },
    ],
    [
      encodeHeartbeat(7, 41, 3, 0xdeadbeef),
      "4a 44 52 53 01 05 00 00 00 00 00 07 00 00 00 29 00 00 00 03 de ad be ef",
      { type: 5, sender: 7, latest: 41, count: 3, hash: 0xdeadbeef },
    ],
    [
      encodeResyncRequest(7, 41, 0),
      "4a 44 52 53 01 06 00 00 00 00 00 07 00 00 00 29 00 00 00 00",
      { type: 6, sender: 7, latest: 41, target: 0 },
    ],
  ];
  for (const [bytes, expected, frame] of vectors) {
    assertEquals(hex(bytes), expected);
    assertEquals(decodeFrame(bytes), { ok: true, frame });
  }
});

Deno.test("frame: every malformed header is dropped by its reason", () => {
  const good = "4a 44 52 53 01 01 00 00 00 00 00 07 00 00 00 01 aa";
  const cases: [string, string][] = [
    ["28 00 01 00 " + "00 ".repeat(36), "net_unframed"], // a plain format-C entry
    ["", "net_unframed"],
    ["4a 44 52", "net_unframed"],
    ["4a 44 52 53 01 01 00 00 00 00 00 07 00 00 00", "net_frame_short"],
    [good.replace("53 01 01", "53 02 01"), "net_frame_version"],
    [good.replace("53 01 01", "53 01 00"), "net_frame_type"],
    [good.replace("53 01 01", "53 01 08"), "net_frame_type"],
    [good.replace("01 01 00 00", "01 01 00 02"), "net_frame_flags"],
    [good.replace("01 01 00 00", "01 01 00 01"), "net_auth_unexpected"], // authenticated; this daemon: no key
    ["4a 44 52 53 01 01 00 00 00 00 00 00 00 00 00 01 aa", "net_frame_sender"],
    ["4a 44 52 53 01 01 00 00 00 00 00 07 00 00 00 01", "net_frame_body"], // DATA without entries
    ["4a 44 52 53 01 02 00 00 00 00 00 07 00 00 00 01 00 00 00 00 00 00 00 01", "net_frame_body"], // REPLAY, no entry
    ["4a 44 52 53 01 05 00 00 00 00 00 07 00 00 00 01 00 00 00 00 00 00 00", "net_frame_body"], // HEARTBEAT short
    ["4a 44 52 53 01 06 00 00 00 00 00 07 00 00 00 01 00 00 00 00 00", "net_frame_body"], // RESYNC long
  ];
  for (const [bytes, reason] of cases) {
    const decoded = decodeFrame(unhex(bytes));
    assertEquals(decoded.ok ? "ok" : decoded.reason, reason, bytes);
  }
  assertEquals(decodeFrame(unhex(good)).ok, true);
  // Where the trailer was checked and cut off (a key), the flag is expected, and its absence is malformed.
  const flagged = unhex(good.replace("01 01 00 00", "01 01 00 01"));
  assertEquals(decodeFrame(flagged, FRAME_FLAG_AUTH).ok, true);
  const unflagged = decodeFrame(unhex(good), FRAME_FLAG_AUTH);
  assertEquals(unflagged.ok ? "ok" : unflagged.reason, "net_frame_flags");
});

Deno.test("frame: a framed datagram never validates as a plain payload, and upstream mode names it", () => {
  const frame = encodeData(7, 1, sessionEntry(1));
  assertEquals(hasFrameMagic(frame), true);
  for (const format of ["A", "B", "C"] as const) {
    assertEquals(validatePayload(frame, format).ok, false);
    const decoded = upstreamWire.decode(frame, format);
    assertEquals(decoded.ok ? "ok" : decoded.reason, "net_framed");
  }
  // A plain entry is never taken for a frame.
  assertEquals(hasFrameMagic(sessionEntry(1)), false);
  assertEquals(hasFrameMagic(sessionEntry(1, "A")), false);
  assertEquals(hasFrameMagic(sessionEntry(1, "B")), false);
});
