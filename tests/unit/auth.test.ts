/**
 * Authentication (docs/protocol.md §10.6): the trailer codec (byte vectors), the authenticator's checks in
 * their order and every reject reason, the replay window's edges, the authenticated wires, the key files and
 * their config errors, and `--check`'s lines.
 */
import { createHmac } from "node:crypto";
import { assert, assertEquals } from "../helpers/assert.ts";
import { AUTH_TRAILER_BYTES, readTrailer, sealFrame, sealInPlace } from "../../lib/auth/frame.ts";
import { Authenticator, equalTags, FRESHNESS_MS, RETAIN_MS } from "../../lib/auth/authenticator.ts";
import { hmacBackend, libcryptoHmacSha256, nodeHmacSha256 } from "../../lib/auth/hmac.ts";
import { loadLibcrypto } from "../../ffi/libcrypto.ts";
import { REPLAY_WINDOW, SenderWindows } from "../../lib/auth/replay_window.ts";
import { AuthenticatedWire, FramedDataWire } from "../../lib/auth/wire.ts";
import {
  decodeFrame,
  encodeData,
  encodeDataInto,
  encodeHeartbeat,
  FRAME_FLAG_AUTH,
} from "../../lib/reliable/frame.ts";
import { upstreamWire } from "../../lib/wire.ts";
import { ReliableSync } from "../../lib/reliable/sync.ts";
import { Stats } from "../../lib/stats.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { ConfigError, parseConfigText } from "../../lib/config/json_file.ts";
import { validateNetSocket } from "../../lib/config/netsocket.ts";
import { describeConfig } from "../../lib/config/load.ts";
import { readKeyFile } from "../../lib/config/key_file.ts";
import { fakeLookup } from "../helpers/fake_lookup.ts";
import { runJoold } from "../helpers/daemon_process.ts";
import { sessionBatch } from "../helpers/kernel_messages.ts";

const unhex = (text: string) =>
  Uint8Array.from(text.replace(/\s/g, "").match(/../g) ?? [], (p) => parseInt(p, 16));
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const KEY = new Uint8Array(32).fill(0x0b);
const KEY2 = new Uint8Array(32).fill(0x0c);
const NOW = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const hmac = (key: Uint8Array) => (data: Uint8Array) => createHmac("sha256", key).update(data).digest();

Deno.test("auth frame: the trailer's byte layout (flag, counter, time, tag over all before it)", () => {
  const frame = encodeData(0x01020304, 7, unhex("aa bb"));
  const tag = new Uint8Array(32).fill(0xee);
  let covered = new Uint8Array(0);
  const sealed = sealFrame(frame, 0x1_0000_0002, 0x0102_0304_0506, (data) => {
    covered = data.slice();
    return tag;
  });
  assertEquals(
    hex(sealed),
    "4a445253" + "01" + "01" + "0001" + "01020304" + "00000007" + "aabb" + // header (flag set) + body
      "0000000100000002" + "0000010203040506" + "ee".repeat(32),
  );
  assertEquals(hex(covered), hex(sealed.subarray(0, sealed.length - 32)));
  assertEquals(sealed.length, frame.length + AUTH_TRAILER_BYTES);
  assertEquals(frame[7], 0, "the input frame is not changed");
  // A real tag: HMAC-SHA-256 with KEY over the covered bytes.
  const real = sealFrame(frame, 1, NOW, hmac(KEY));
  assertEquals(hex(real.subarray(-32)), hex(hmac(KEY)(real.subarray(0, real.length - 32))));
  const read = readTrailer(real);
  assert(read.ok);
  assertEquals(
    { sender: read.trailer.sender, counter: read.trailer.counter, time: read.trailer.timeMs },
    { sender: 0x01020304, counter: 1, time: NOW },
  );
  assertEquals(hex(read.trailer.frame), hex(real.subarray(0, frame.length)));
  const decoded = decodeFrame(read.trailer.frame, FRAME_FLAG_AUTH);
  assert(decoded.ok && decoded.frame.type === 1 && hex(decoded.frame.entries) === "aabb");
});

Deno.test("auth frame: a frame written into a used buffer and sealed in place gives sealFrame's bytes", () => {
  const entries = unhex("aa bb cc");
  const frame = encodeData(0x01020304, 7, entries);
  const used = new Uint8Array(frame.length + AUTH_TRAILER_BYTES + 5).fill(0xff);
  const length = encodeDataInto(used, 0x01020304, 7, entries);
  assertEquals(length, frame.length);
  assertEquals(hex(used.subarray(0, length)), hex(frame), "flags cleared, header and body written");
  assertEquals(hex(used.subarray(length)), "ff".repeat(AUTH_TRAILER_BYTES + 5), "nothing written after it");
  const sealed = sealInPlace(used.subarray(0, length + AUTH_TRAILER_BYTES), 0x1_0000_0002, NOW, hmac(KEY));
  assert(sealed.buffer === used.buffer, "the same buffer");
  assertEquals(hex(sealed), hex(sealFrame(frame, 0x1_0000_0002, NOW, hmac(KEY))));
  // Through the authenticator: the same tags as sealing a copy; its own sender id is remembered either way.
  const one = new Authenticator([KEY], () => NOW);
  const two = new Authenticator([KEY], () => NOW);
  const room = new Uint8Array(frame.length + AUTH_TRAILER_BYTES);
  room.set(frame);
  assertEquals(hex(one.sealInPlace(room)), hex(two.seal(frame)));
  assertEquals(one.counters.sealed, 1);
  const back = two.seal(encodeData(0x01020304, 8, entries));
  assert(!one.open(back).ok, "its own frame, sent again by someone else");
  // Too small a buffer is refused, not overrun.
  let refused = false;
  try {
    encodeDataInto(new Uint8Array(frame.length - 1), 1, 1, entries);
  } catch (error) {
    refused = error instanceof RangeError;
  }
  assert(refused);
});

Deno.test("auth frame: no magic, no flag, or too short for a trailer: net_auth_missing", () => {
  const frame = encodeData(1, 1, unhex("aa"));
  const sealed = sealFrame(frame, 1, NOW, hmac(KEY));
  for (
    const [datagram, why] of [
      [sessionBatch(0, 1), "plain"],
      [frame, "without authentication"],
      [sealed.subarray(0, 16 + AUTH_TRAILER_BYTES - 1), "too short"],
    ] as const
  ) {
    const read = readTrailer(datagram);
    assert(!read.ok && read.reason === "net_auth_missing" && read.detail.includes(why), JSON.stringify(read));
  }
});

function authenticator(keys = [KEY], clock = { now: NOW }) {
  return { auth: new Authenticator(keys, () => clock.now), clock };
}

const sealedBy = (key: Uint8Array, sender: number, counter: number, time = NOW) =>
  sealFrame(encodeData(sender, counter, sessionBatch(0, 1)), counter, time, hmac(key));

Deno.test("authenticator: its tags are HMAC-SHA-256's for keys of 32, 64 and 100 bytes", () => {
  for (const length of [32, 64, 100]) {
    const key = Uint8Array.from({ length }, (_, i) => i * 7);
    const sealed = new Authenticator([key], () => NOW).seal(encodeData(3, 1, sessionBatch(0, 2)));
    assertEquals(
      hex(sealed.subarray(-32)),
      hex(hmac(key)(sealed.subarray(0, sealed.length - 32))),
      `${length}-byte key`,
    );
  }
});

Deno.test("hmac: libcrypto's and node:crypto's tags are createHmac's (keys 32/64/100 bytes, messages 0–3000)", () => {
  const lib = loadLibcrypto();
  // Where libcrypto.so.3 is missing the daemon uses node:crypto; the test host must have it to test both.
  assert(lib, "libcrypto.so.3 did not load: install libssl3");
  assertEquals(hmacBackend(), "libcrypto");
  for (const keyLength of [32, 64, 100]) {
    const key = Uint8Array.from({ length: keyLength }, (_, i) => (i * 13 + 1) & 0xff);
    const macs: [string, (data: Uint8Array) => Uint8Array][] = [
      ["libcrypto", libcryptoHmacSha256(key, lib)],
      ["node:crypto", nodeHmacSha256(key)],
    ];
    for (const length of [0, 1, 55, 56, 64, 119, 1504, 3000, 40]) {
      const data = Uint8Array.from({ length }, (_, i) => (i * 31 + keyLength) & 0xff);
      const want = hex(hmac(key)(data));
      for (const [name, mac] of macs) {
        assertEquals(hex(mac(data)), want, `${name}, ${keyLength}-byte key, ${length}-byte message`);
      }
    }
  }
});

Deno.test("equalTags: equal, one bit apart anywhere, other lengths", () => {
  const tag = Uint8Array.from({ length: 32 }, (_, i) => i * 5);
  assert(equalTags(tag, tag.slice()));
  for (let i = 0; i < 32; i++) {
    const other = tag.slice();
    other[i] ^= 0x80;
    assert(!equalTags(tag, other), `byte ${i}`);
  }
  assert(!equalTags(tag, tag.subarray(0, 31)));
  assert(equalTags(new Uint8Array(0), new Uint8Array(0)));
});

Deno.test("authenticator: seals with the first key; opens first key, second key; counts each", () => {
  const { auth: a } = authenticator([KEY]);
  const { auth: b } = authenticator([KEY2, KEY]);
  const sealed = a.seal(encodeData(5, 1, sessionBatch(0, 1)));
  const read = readTrailer(sealed);
  assert(read.ok && read.trailer.counter === 1 && read.trailer.timeMs === NOW);
  assertEquals(readTrailer(a.seal(encodeData(5, 2, sessionBatch(0, 1)))).ok && 2, 2);
  const opened = b.open(sealed);
  assert(opened.ok);
  assertEquals(opened.frame.length, sealed.length - AUTH_TRAILER_BYTES);
  assert(b.open(sealedBy(KEY2, 6, 1)).ok);
  assertEquals(b.counters, { sealed: 0, verifiedFirst: 1, verifiedSecond: 1 });
});

Deno.test("authenticator: every reject reason, checked in the order missing, bad, replay, stale", () => {
  const { auth, clock } = authenticator([KEY, KEY2]);
  const reason = (datagram: Uint8Array) => {
    const result = auth.open(datagram);
    return result.ok ? "ok" : result.reason;
  };
  assertEquals(reason(sessionBatch(0, 1)), "net_auth_missing");
  assertEquals(reason(sealedBy(new Uint8Array(32), 9, 1)), "net_auth_bad");
  const good = sealedBy(KEY, 9, 1);
  assertEquals(reason(good), "ok");
  assertEquals(reason(good), "net_auth_replay");
  // One flipped bit anywhere (header, body, counter, time, tag): bad.
  for (const at of [5, 9, 20, good.length - 40, good.length - 30, good.length - 1]) {
    const copy = good.slice();
    copy[at] ^= 1;
    assertEquals(reason(copy), "net_auth_bad", `bit flipped at ${at}`);
  }
  // Stale both ways, just beyond the window; within it, fine.
  assertEquals(reason(sealedBy(KEY, 10, 1, NOW - FRESHNESS_MS - 1)), "net_auth_stale");
  assertEquals(reason(sealedBy(KEY, 10, 2, NOW + FRESHNESS_MS + 1)), "net_auth_stale");
  assertEquals(reason(sealedBy(KEY, 10, 3, NOW - FRESHNESS_MS)), "ok");
  // A stale frame does not take its counter: the same counter, fresh, still passes.
  assertEquals(reason(sealedBy(KEY, 11, 1, NOW - 2 * FRESHNESS_MS)), "net_auth_stale");
  assertEquals(reason(sealedBy(KEY, 11, 1)), "ok");
  // Order: a replayed frame that is also stale is a replay; a bad tag on a replayed frame is bad.
  clock.now += 2 * FRESHNESS_MS;
  assertEquals(reason(good), "net_auth_replay");
  const badReplay = good.slice();
  badReplay[good.length - 1] ^= 0xff;
  assertEquals(reason(badReplay), "net_auth_bad");
  // Once the sender's window is forgotten (RETAIN_MS after its last frame), its frames are all stale.
  clock.now = NOW + RETAIN_MS + 20_000;
  auth.open(sealedBy(KEY, 12, 1, clock.now)); // a frame of another sender runs the sweep
  assertEquals(reason(good), "net_auth_stale");
  // New keys (SIGHUP): the old one is refused, the new one taken.
  auth.setKeys([KEY2]);
  assertEquals(reason(sealedBy(KEY, 13, 1, clock.now)), "net_auth_bad");
  assertEquals(reason(sealedBy(KEY2, 13, 2, clock.now)), "ok");
});

Deno.test("replay window: reordering within the window taken once; its edges; a jump; forgetting", () => {
  const w = new SenderWindows(1000);
  const take = (sender: number, counter: number, now = 0) => {
    const verdict = w.check(sender, counter, now);
    if (verdict === "fresh") w.take(sender, counter, now);
    return verdict;
  };
  assertEquals(take(1, 5), "fresh");
  assertEquals(take(1, 3), "fresh", "older but never seen: reordered");
  assertEquals(take(1, 3), "duplicate");
  assertEquals(take(1, 5), "duplicate");
  assertEquals(take(1, 4), "fresh");
  assertEquals(take(2, 3), "fresh", "windows are per sender");
  assertEquals(take(1, 5 + REPLAY_WINDOW), "fresh");
  assertEquals(take(1, 5), "behind", "exactly a window behind the highest");
  assertEquals(take(1, 6), "fresh", "one less than a window behind");
  assertEquals(take(1, 6), "duplicate");
  // A jump of more than a window forgets every bit, so old bits do not alias.
  assertEquals(take(1, 10 * REPLAY_WINDOW), "fresh");
  assertEquals(take(1, 10 * REPLAY_WINDOW - 1), "fresh");
  assertEquals(take(1, 9 * REPLAY_WINDOW + 5), "fresh", "same bit as 10 × W + 5 - W, never seen");
  assertEquals(take(1, 10 * REPLAY_WINDOW + 5), "fresh");
  assertEquals(take(1, 9 * REPLAY_WINDOW + 5), "behind");
  // A jump within the window clears the bits of the counters skipped.
  const v = new SenderWindows(1000);
  v.take(7, 1, 0);
  v.take(7, 1 + REPLAY_WINDOW - 1, 0);
  assertEquals(v.check(7, 1, 0), "duplicate");
  v.take(7, 1 + REPLAY_WINDOW + 2, 0);
  assertEquals(v.check(7, 1 + REPLAY_WINDOW, 0), "fresh", "skipped: its bit (counter 1's) was cleared");
  assertEquals(v.check(7, 1 + REPLAY_WINDOW - 1, 0), "duplicate");
  // Kept for retainMs after the last frame, then forgotten.
  w.sweep(1000);
  assertEquals(w.size, 2);
  w.sweep(1001);
  assertEquals(w.size, 0);
  // Bounded: a new sender beyond maxSenders is refused until one can be forgotten.
  const small = new SenderWindows(1000, 2);
  small.take(1, 1, 0);
  small.take(2, 1, 500);
  assertEquals(small.check(3, 1, 900), "full");
  assertEquals(small.check(3, 1, 1200), "fresh", "sender 1 forgotten");
});

Deno.test("wires: upstream mode with a key round-trips DATA frames; mixed groups are named", () => {
  const a = new AuthenticatedWire(new FramedDataWire(), new Authenticator([KEY]));
  const b = new AuthenticatedWire(new FramedDataWire(), new Authenticator([KEY]));
  assertEquals(a.name, "framed+auth");
  const entries = sessionBatch(0, 3);
  const datagram = a.encode(entries);
  const decoded = b.decode(datagram, "C");
  assert(decoded.ok === true && decoded.sessions === 3 && hex(decoded.payload) === hex(entries));
  // One send buffer, reused: each datagram is whole and sealed anew (flag, counter, tag), shorter or longer.
  for (const n of [1, 5, 2]) {
    const batch = sessionBatch(10 * n, n);
    const next = b.decode(a.encode(batch), "C");
    assert(next.ok === true && next.sessions === n && hex(next.payload) === hex(batch), `${n} sessions`);
  }
  // Around a reliable-mode engine too (its frame copied into the buffer, then sealed).
  const aroundOther = new AuthenticatedWire(
    { name: "other", overhead: 16, encode: (p) => encodeData(55, 1, p), decode: () => ({ ok: "handled" }) },
    new Authenticator([KEY]),
  );
  const opened = new Authenticator([KEY]).open(aroundOther.encode(entries));
  assert(
    opened.ok && hex(opened.frame) === hex(encodeData(55, 1, entries)).replace(/^(.{12})0000/, "$10001"),
  );
  // Keyless receivers: net_auth_unexpected, with what to fix.
  for (
    const result of [
      upstreamWire.decode(datagram, "C"),
      new ReliableSync(
        {
          mode: "reliable",
          trackWeight: -1,
          heartbeatMs: 1000,
          resendBuffer: 64,
          sessionCache: 10,
          replayRate: 10,
        },
        { stats: new Stats(), log: new MemoryLogger(), format: () => "C" },
      ).decode(datagram, "C"),
    ]
  ) {
    assert(result.ok === false && result.reason === "net_auth_unexpected", JSON.stringify(result));
    assert(result.detail.includes('"key file"'));
  }
  // A keyed receiver: a keyless peer's datagrams are net_auth_missing.
  const missing = b.decode(entries, "C");
  assert(missing.ok === false && missing.reason === "net_auth_missing");
  // A reliable-mode control frame at an upstream-mode receiver with a key: the mixed group, named.
  const heartbeat = new Authenticator([KEY], () => Date.now()).seal(encodeHeartbeat(77, 0, 0, 0));
  const control = b.decode(heartbeat, "C");
  assert(control.ok === false && control.reason === "net_frame_type" && control.detail.includes('"mode"'));
  // Entries are still validated after authentication.
  const junk = new Authenticator([KEY], () => Date.now()).seal(encodeData(78, 1, unhex("00 01 02")));
  const invalid = b.decode(junk, "C");
  assert(invalid.ok === false && invalid.reason === "net_truncated_entry", JSON.stringify(invalid));
});

// ---- key files and the config --------------------------------------------------------------------------

const base = { "multicast address": "233.252.0.64", "multicast port": 6464, reuseaddr: 1 };
const net = (obj: unknown) =>
  validateNetSocket(parseConfigText("netsocket.json", JSON.stringify(obj)), fakeLookup, new MemoryLogger());

async function netError(obj: unknown): Promise<string> {
  try {
    await net(obj);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("key files: regular, 0600-like, at least 32 bytes; every problem one line naming file, field, value", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.key`;
    await Deno.writeFile(good, KEY, { mode: 0o600 });
    assertEquals((await readKeyFile("n.json", "key file", good)).key, KEY);
    await Deno.writeFile(`${dir}/open.key`, KEY, { mode: 0o644 });
    await Deno.chmod(`${dir}/open.key`, 0o644);
    await Deno.writeFile(`${dir}/short.key`, new Uint8Array(31), { mode: 0o600 });
    await Deno.writeFile(`${dir}/group.key`, KEY, { mode: 0o600 });
    await Deno.chmod(`${dir}/group.key`, 0o620);
    const cases: [unknown, string][] = [
      [
        { ...base, "key file": `${dir}/open.key` },
        `netsocket.json: "key file": readable or writable by group or others (mode 0644), got "${dir}/open.key"; ` +
        `run: chmod 600 ${dir}/open.key`,
      ],
      [
        { ...base, "key file": `${dir}/group.key` },
        `netsocket.json: "key file": readable or writable by group or others (mode 0620), got "${dir}/group.key"; ` +
        `run: chmod 600 ${dir}/group.key`,
      ],
      [
        { ...base, "key file": `${dir}/short.key` },
        `netsocket.json: "key file": holds 31 bytes; a key needs at least 32, got "${dir}/short.key"; ` +
        `write a new one with: head -c 32 /dev/urandom > ${dir}/short.key`,
      ],
      [
        { ...base, "key file": `${dir}/absent.key` },
        `netsocket.json: "key file": no such file, got "${dir}/absent.key"; create it with: ` +
        `head -c 32 /dev/urandom > ${dir}/absent.key && chmod 600 ${dir}/absent.key`,
      ],
      [
        { ...base, "key file": dir },
        `netsocket.json: "key file": not a regular file, got "${dir}"; name a file;`,
      ],
      [{ ...base, "key file": 5 }, `netsocket.json: "key file"`],
      [{ ...base, "key file": "" }, `netsocket.json: "key file": must not be empty`],
      [
        { ...base, "key file": good, "second key file": `${dir}/short.key` },
        `netsocket.json: "second key file": holds 31 bytes`,
      ],
      [
        { ...base, "second key file": good },
        `netsocket.json: "second key file": a second accepted key, but no "key file", got "${good}"; add "key file"`,
      ],
    ];
    for (const [obj, expected] of cases) {
      const message = await netError(obj);
      assert(message.startsWith(expected), `${message}\n  expected to start with\n${expected}`);
      assert(!message.includes("\n"));
    }
    const config = await net({ ...base, mode: "reliable", "key file": good, "Second Key File": good });
    assertEquals(config.auth?.keyFile.path, good);
    assertEquals(config.auth?.secondKeyFile?.key.length, 32);
    assertEquals((await net(base)).auth, undefined, "no key: no auth, the default wire");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("key files: --check prints paths and lengths, never the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = new Uint8Array(40).fill(0x41); // "AAAA…": easy to spot if printed
    await Deno.writeFile(`${dir}/sync.key`, key, { mode: 0o600 });
    const text = describeConfig(
      { net: await net({ ...base, "key file": `${dir}/sync.key` }), mod: { instance: "default" } },
      undefined,
      [],
    );
    assert(text.includes(`\nkey file: ${dir}/sync.key (40 bytes)\n`), text);
    assert(text.includes("\nsecond key file: (none)\n"), text);
    assert(text.includes("framed data, no recovery"), text);
    assert(!text.includes("AAAA"), text);
    const plain = describeConfig({ net: await net(base), mod: { instance: "default" } }, undefined, []);
    assert(!plain.includes("key file"), plain);

    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify({ ...base, "key file": "sync.key" }));
    const result = await runJoold(["--check"], dir);
    assertEquals(result.code, 0, result.stderr);
    assert(result.stdout.includes("key file: sync.key (40 bytes)\n"), result.stdout);
    // What fits one packet with the key's 64 bytes (no interface named: 1 500 assumed).
    assert(/\nfits one packet: .*MTU 1500.*at most 1[34]\d\d bytes/.test(result.stdout), result.stdout);
    await Deno.chmod(`${dir}/sync.key`, 0o640);
    const bad = await runJoold(["--check"], dir);
    assertEquals(bad.code, 3);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert(bad.stderr.includes("chmod 600 sync.key"), bad.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("authenticator: our own authentic frame coming back (a replay towards its sender) is net_auth_replay", () => {
  // Multicast loop is off, so a daemon never hears its own frames unless someone sends them again.
  const a = new Authenticator([KEY], () => NOW);
  const b = new Authenticator([KEY], () => NOW);
  const own = a.seal(encodeData(0x1111_2222, 1, sessionBatch(0, 1)));
  const result = a.open(own);
  assertEquals(result.ok ? "ok" : result.reason, "net_auth_replay");
  // Another daemon takes it (once).
  assert(b.open(own).ok);
  // The sender's id is what makes it "own": a frame of another id sealed by the same key is taken.
  assert(a.open(b.seal(encodeData(0x3333_4444, 1, sessionBatch(0, 1)))).ok);
});
