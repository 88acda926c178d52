/** netsocket.json's reliable-mode keys: defaults, every bad value's one-line error, and `--check`'s lines. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { ConfigError, parseConfigText } from "../../lib/config/json_file.ts";
import { RELIABLE_DEFAULTS, validateNetSocket } from "../../lib/config/netsocket.ts";
import { describeConfig } from "../../lib/config/load.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { fakeLookup } from "../helpers/fake_lookup.ts";
import { runJoold } from "../helpers/daemon_process.ts";

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

Deno.test("reliable config: default upstream; reliable with its defaults; every key read", async () => {
  assertEquals((await net(base)).sync, { mode: "upstream" });
  assertEquals((await net({ ...base, mode: "upstream" })).sync, { mode: "upstream" });
  assertEquals((await net({ ...base, mode: "reliable" })).sync, {
    mode: "reliable",
    trackFile: undefined,
    trackWeight: RELIABLE_DEFAULTS["track weight"].value,
    heartbeatMs: 1000,
    resendBuffer: 4096,
    sessionCache: 1_000_000,
    replayRate: 2000,
  });
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(
      (await net({
        ...base,
        Mode: "reliable",
        "track file": `${dir}/in-sync`,
        "track weight": -100,
        "heartbeat interval": 500,
        "resend buffer": 1024,
        "session cache": 200_000,
        "replay rate": 5000,
      })).sync,
      {
        mode: "reliable",
        trackFile: `${dir}/in-sync`,
        trackWeight: -100,
        heartbeatMs: 500,
        resendBuffer: 1024,
        sessionCache: 200_000,
        replayRate: 5000,
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reliable config: every bad value gets one line naming file, field, value and the fix", async () => {
  const reliable = { ...base, mode: "reliable" };
  const cases: [unknown, string][] = [
    [
      { ...base, mode: "fast" },
      'netsocket.json: "mode": unknown mode, got "fast"; write "upstream" (upstream joold\'s wire, the default) or "reliable" (every daemon of the group is this one)',
    ],
    [
      { ...base, mode: 1 },
      'netsocket.json: "mode": must be a string, got 1; write it in quotes, e.g. "upstream" or "reliable"',
    ],
    [
      { ...base, "track file": "/run/x" },
      'netsocket.json: "track file": a reliable-mode setting, but "mode" is "upstream", got "/run/x"; set "mode": "reliable" on every daemon of the group, or remove the key',
    ],
    [
      { ...reliable, "track file": "/nonexistent-dir-joold/in-sync" },
      'netsocket.json: "track file": its directory /nonexistent-dir-joold does not exist, got "/nonexistent-dir-joold/in-sync"; create the directory (e.g. /run/joold) or name a file in an existing one',
    ],
    [
      { ...reliable, "track file": "/tmp/" },
      'netsocket.json: "track file": not a file path, got "/tmp/"; write the path of a file, e.g. "/run/joold/in-sync"',
    ],
    [
      { ...reliable, "track weight": 10 },
      'netsocket.json: "track weight": out of range -253–-1, got 10; pick a value from -253 to -1',
    ],
    [
      { ...reliable, "heartbeat interval": "1s" },
      'netsocket.json: "heartbeat interval": must be a whole number from 100 to 60000, got "1s"; write a number without quotes',
    ],
    [
      { ...reliable, "resend buffer": 10 },
      'netsocket.json: "resend buffer": out of range 64–1000000, got 10; pick a value from 64 to 1000000',
    ],
    [
      { ...reliable, "session cache": 0 },
      'netsocket.json: "session cache": out of range 1–100000000, got 0; pick a value from 1 to 100000000',
    ],
    [
      { ...reliable, "replay rate": 2.5 },
      'netsocket.json: "replay rate": must be a whole number from 10 to 1000000, got 2.5; write a number without quotes',
    ],
  ];
  for (const [input, expected] of cases) {
    const message = await netError(input);
    assertEquals(message, expected);
    assert(!message.includes("\n"));
  }
});

Deno.test("reliable config: --check prints the mode and its settings", async () => {
  const config = {
    net: await net({ ...base, mode: "reliable", "replay rate": 3000 }),
    mod: { instance: "default" },
  };
  const text = describeConfig(config, undefined, []);
  assert(text.includes("\nmode: reliable\n"), text);
  assert(text.includes("\ntrack file: (none)\n"), text);
  assert(text.includes("\nreplay rate: 3000 datagrams/s"), text);
  const upstream = describeConfig({ net: await net(base), mod: { instance: "default" } }, undefined, []);
  assert(upstream.includes("\nmode: upstream\n"), upstream);
  assert(!upstream.includes("track file"), upstream);

  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify({ ...base, mode: "reliable" }));
    const result = await runJoold(["--check"], dir);
    assertEquals(result.code, 0, result.stderr);
    assert(result.stdout.includes("mode: reliable\n"), result.stdout);
    assert(result.stdout.includes("heartbeat interval: 1000 ms\n"), result.stdout);
    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify({ ...base, mode: "Reliable" }));
    const bad = await runJoold(["--check"], dir);
    assertEquals(bad.code, 3);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
