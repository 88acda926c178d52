import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import {
  batchFit,
  describeFit,
  fitSetting,
  linkText,
  packetPayloadLimit,
  splitAtEntries,
  type SyncLink,
} from "../../lib/net/packet_fit.ts";
import { FRAME_HEADER_BYTES } from "../../lib/reliable/frame.ts";
import { AUTH_TRAILER_BYTES } from "../../lib/auth/frame.ts";
import { framedWireOverhead } from "../../lib/auth/wire.ts";

const eth6: SyncLink = { name: "eth0", mtu: 1500, measured: true, family: 6 };
const eth4: SyncLink = { ...eth6, family: 4 };
const KEYED = FRAME_HEADER_BYTES + AUTH_TRAILER_BYTES;

Deno.test("packet fit: one packet's UDP payload is the MTU minus the IP and UDP headers", () => {
  assertEquals(packetPayloadLimit(eth6), 1452); // 1500 − 40 − 8: Jool's default ss-max-payload
  assertEquals(packetPayloadLimit(eth4), 1472); // 1500 − 20 − 8
  assertEquals(packetPayloadLimit({ ...eth6, mtu: 9000 }), 8952);
});

Deno.test("packet fit: a keyed frame's 64 bytes leave 1 388 bytes (34 format-C sessions) at MTU 1 500 over IPv6", () => {
  assertEquals(KEYED, 64);
  assertEquals(batchFit(eth6, KEYED, "C"), { payloadBytes: 1388, sessions: 34 });
  assertEquals(batchFit(eth6, KEYED, "B"), { payloadBytes: 1388, sessions: 26 });
  assertEquals(batchFit(eth6, KEYED, "A"), { payloadBytes: 1388, sessions: 9 });
  assertEquals(batchFit(eth4, KEYED, "C"), { payloadBytes: 1408, sessions: 35 });
  // The reliable mode without a key: only the 16-byte header.
  assertEquals(batchFit(eth6, FRAME_HEADER_BYTES, "C"), { payloadBytes: 1436, sessions: 35 });
  // Upstream's wire: the kernel's default 36 fit exactly.
  assertEquals(batchFit(eth6, 0, "C"), { payloadBytes: 1452, sessions: 36 });
});

Deno.test("packet fit: the Jool setting as an operator types it (sessions from 4.1.11, bytes before)", () => {
  assertEquals(
    fitSetting("nat64", batchFit(eth6, KEYED, "C"), "C"),
    "jool -i nat64 global update ss-max-sessions-per-packet 34",
  );
  assertEquals(
    fitSetting("default", batchFit(eth6, KEYED, "A"), "A"),
    "jool -i default global update ss-max-sessions-per-packet 9 (Jool 4.1.11), or jool -i default global " +
      "update ss-max-payload 1388 (4.1.9, 4.1.10)",
  );
  assertEquals(linkText(eth6), "eth0 (MTU 1500)");
  assertEquals(
    linkText({ mtu: 1500, measured: false, family: 6 }),
    "an unknown interface (MTU 1500 assumed)",
  );
});

Deno.test("packet fit: a payload is split at entry boundaries, each piece as full as it can be", () => {
  // Five 4-byte entries, at most 9 bytes a piece: two entries, two entries, one.
  const payload = Uint8Array.of(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5);
  assertEquals(splitAtEntries(payload, 4, 9).map((p) => [...p]), [
    [1, 1, 1, 1, 2, 2, 2, 2],
    [3, 3, 3, 3, 4, 4, 4, 4],
    [5, 5, 5, 5],
  ]);
  // 36 format-C entries into 1 388 bytes: 34 and 2, views of the same bytes.
  const batch = new Uint8Array(36 * 40).map((_, i) => i % 251);
  const pieces = splitAtEntries(batch, 40, 1388);
  assertEquals(pieces.map((p) => p.length), [1360, 80]);
  assertEquals(pieces[1][0], batch[1360]);
  assertEquals(pieces[0].buffer, batch.buffer);
  // Within the limit: the same array, alone.
  assertEquals(splitAtEntries(batch, 40, 1440)[0] === batch, true);
  const partial = assertThrows(() => splitAtEntries(new Uint8Array(82), 40, 40), RangeError);
  assert(partial.message.includes("not whole 40-byte entries"), partial.message);
  const tooSmall = assertThrows(() => splitAtEntries(new Uint8Array(80), 40, 39), RangeError);
  assert(tooSmall.message.includes("hold no 40-byte entry"), tooSmall.message);
});

Deno.test("packet fit: --check's line, and each wire's overhead without building it", () => {
  assertEquals(
    describeFit(eth6, KEYED),
    "fits one packet: eth0 (MTU 1500), 1452 bytes of UDP payload; framed (+64 bytes), a batch of at most 1388 " +
      "bytes: sessions of format C 34, B 26, A 9 (ss-max-sessions-per-packet no higher than that; Jool's " +
      "defaults: C 36, B and A 10)",
  );
  // A jumbo link: still no datagram beyond the 2 048 bytes every receiver reads.
  assertEquals(batchFit({ ...eth6, mtu: 9000 }, KEYED, "C"), { payloadBytes: 1984, sessions: 49 });
  assertEquals(framedWireOverhead({}), 0);
  assertEquals(framedWireOverhead({ sync: { mode: "upstream" } }), 0);
  assertEquals(framedWireOverhead({ sync: { mode: "reliable" } }), 16);
  assertEquals(framedWireOverhead({ auth: {} }), 64);
  assertEquals(framedWireOverhead({ auth: {}, sync: { mode: "reliable" } }), 64);
});
