import { assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import { ConfigError, parseConfigText } from "../../lib/config/json_file.ts";
import { EXIT } from "../../lib/errors.ts";
import { validateNetSocket } from "../../lib/config/netsocket.ts";
import { validateInstanceName, validateModSocket } from "../../lib/config/modsocket.ts";
import { isMulticast, needsScope, parseIPv6 } from "../../lib/config/addresses.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { describeConfig } from "../../lib/config/load.ts";
import { fakeLookup } from "../helpers/fake_lookup.ts";

const net = (obj: unknown, log = new MemoryLogger()) =>
  validateNetSocket(parseConfigText("netsocket.json", JSON.stringify(obj)), fakeLookup, log);

async function netError(obj: unknown): Promise<string> {
  try {
    await net(obj);
  } catch (error) {
    if (error instanceof ConfigError) {
      assertEquals(error.exitCode, EXIT.CONFIG, "config errors exit with status 3");
      return error.message;
    }
    throw error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("documented IPv6 example validates with every field", async () => {
  const log = new MemoryLogger();
  const config = await net({
    "multicast address": "ff08::db8:64:64",
    "multicast port": "6464",
    "in interface": "eth0",
    "out interface": "eth0",
    "reuseaddr": 1,
    "ttl": 3,
  }, log);
  assertEquals(config, {
    file: "netsocket.json",
    groupAddress: "ff08::db8:64:64",
    family: 6,
    scope: undefined,
    port: 6464,
    inInterface: { text: "eth0", name: "eth0", index: 2 },
    outInterface: { text: "eth0", name: "eth0", index: 2 },
    reuseaddr: 1,
    ttl: 3,
    sync: { mode: "upstream" },
    checkPool4: false,
  });
  assertEquals(log.lines, []);
});

Deno.test("documented IPv4 example validates; defaults apply; reuseaddr 0 warns", async () => {
  const log = new MemoryLogger();
  const config = await net({
    "multicast address": "233.252.0.64",
    "multicast port": 6464,
    "in interface": "192.0.2.1",
  }, log);
  assertEquals(config.family, 4);
  assertEquals(config.port, 6464);
  assertEquals(config.inInterface, { text: "192.0.2.1", address: "192.0.2.1", name: "eth0" });
  assertEquals(config.outInterface, undefined);
  assertEquals(config.ttl, 1);
  assertEquals(config.reuseaddr, 0);
  assertEquals(log.lines.length, 1);
  assertEquals(log.lines[0].startsWith('warn: netsocket.json: "reuseaddr" is absent (default 0)'), true);
});

Deno.test("keys match case-insensitively; unknown keys warn by name", async () => {
  const log = new MemoryLogger();
  const config = await net({
    "Multicast Address": "233.252.0.64",
    "MULTICAST PORT": "joold",
    reuseaddr: 1,
    tll: 3,
  }, log);
  assertEquals(config.port, 6464);
  assertEquals(config.ttl, 1);
  assertEquals(log.lines.length, 1);
  assertEquals(log.lines[0].includes('unknown key "tll" ignored'), true);
});

Deno.test("link-local group takes its %interface; host names resolve", async () => {
  const scoped = await net({
    "multicast address": "ff02::db8:64%eth1",
    "multicast port": "6464",
    reuseaddr: 1,
  });
  assertEquals(scoped.groupAddress, "ff02::db8:64");
  assertEquals(scoped.scope, { name: "eth1", index: 3 });
  const named = await net({
    "multicast address": "sync-group.example",
    "multicast port": "6464",
    reuseaddr: 1,
  });
  assertEquals(named.groupAddress, "233.252.0.64");
});

Deno.test("every netsocket error is one line naming file, field, value and remedy", async () => {
  const base = { "multicast address": "233.252.0.64", "multicast port": "6464", reuseaddr: 1 };
  const cases: [unknown, string][] = [
    [
      { "multicast port": "6464" },
      'netsocket.json: "multicast address": the field is mandatory, got nothing; add e.g. "ff08::db8:64:64", or list unicast "peers"',
    ],
    [
      { ...base, "multicast address": 5 },
      'netsocket.json: "multicast address": must be a string, got 5; write it in quotes, e.g. "233.252.0.64" or "ff08::db8:64:64"',
    ],
    [
      { ...base, "multicast address": "192.0.2.80" },
      'netsocket.json: "multicast address": not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 is ff00::/8), got "192.0.2.80"; use the sync group\'s address, e.g. 233.252.0.64 or ff08::db8:64:64',
    ],
    [
      { ...base, "multicast address": "unicast.example" },
      'netsocket.json: "multicast address": it resolves to 192.0.2.80, not to a multicast address, got "unicast.example"; write the multicast group\'s address',
    ],
    [
      { ...base, "multicast address": "nowhere.example" },
      'netsocket.json: "multicast address": the host name does not resolve, not to a multicast address, got "nowhere.example"; write the multicast group\'s address',
    ],
    [
      { ...base, "multicast address": "ff02::db8:64" },
      'netsocket.json: "multicast address": a link-local (or interface-local) group needs its interface, got "ff02::db8:64"; write it as "ff02::db8:64%eth0" with your sync interface\'s name',
    ],
    [
      { ...base, "multicast address": "ff02::db8:64%wlan9" },
      'netsocket.json: "multicast address": no interface named "wlan9", got "ff02::db8:64%wlan9"; use an existing interface (lo, eth0, eth1)',
    ],
    [
      { "multicast address": "233.252.0.64" },
      'netsocket.json: "multicast port": the field is mandatory, got nothing; add e.g. "6464"',
    ],
    [
      { ...base, "multicast port": "70000" },
      'netsocket.json: "multicast port": not a port number from 1 to 65535, got "70000"; write a port number from 1 to 65535 (e.g. "6464") or a service name from /etc/services',
    ],
    [
      { ...base, "multicast port": 0 },
      'netsocket.json: "multicast port": not a port number from 1 to 65535, got 0; write a port number from 1 to 65535 (e.g. "6464") or a service name from /etc/services',
    ],
    [
      { ...base, "multicast port": "potato" },
      'netsocket.json: "multicast port": unknown UDP service name, got "potato"; write a port number from 1 to 65535 (e.g. "6464") or a service name from /etc/services',
    ],
    [
      { ...base, "multicast port": true },
      'netsocket.json: "multicast port": must be a port number or a service name, got true; write a port number from 1 to 65535 (e.g. "6464") or a service name from /etc/services',
    ],
    [
      { ...base, "in interface": "eth0" },
      'netsocket.json: "in interface": an IPv4 group takes an interface\'s IPv4 address, got "eth0"; use one of eth0\'s IPv4 addresses (192.0.2.1)',
    ],
    [
      { ...base, "out interface": "203.0.113.9" },
      'netsocket.json: "out interface": no local interface has this address, got "203.0.113.9"; use an address of this host: 127.0.0.1 (lo), 192.0.2.1 (eth0), 198.51.100.1 (eth1)',
    ],
    [
      { ...base, "multicast address": "ff08::db8:64:64", "in interface": "eth7" },
      'netsocket.json: "in interface": no such interface, got "eth7"; use an existing interface (lo, eth0, eth1)',
    ],
    [
      { ...base, "multicast address": "ff08::db8:64:64", "out interface": "2001:db8::1" },
      'netsocket.json: "out interface": an IPv6 group takes an interface name, not an address, got "2001:db8::1"; use the interface\'s name ("eth0")',
    ],
    [{ ...base, ttl: 256 }, 'netsocket.json: "ttl": out of range 0–255, got 256; pick a value from 0 to 255'],
    [
      { ...base, ttl: "3" },
      'netsocket.json: "ttl": must be a whole number from 0 to 255, got "3"; write a number without quotes',
    ],
    [
      { ...base, reuseaddr: 1.5 },
      'netsocket.json: "reuseaddr": must be a whole number from 0 to 2147483647, got 1.5; write a number without quotes',
    ],
    [
      { ...base, "check pool4": 2 },
      'netsocket.json: "check pool4": out of range 0–1, got 2; pick a value from 0 to 1',
    ],
    [
      { ...base, "check pool4": true },
      'netsocket.json: "check pool4": must be a whole number from 0 to 1, got true; write a number without quotes',
    ],
    [
      { ...base, "Check Pool4": "1" },
      'netsocket.json: "Check Pool4": must be a whole number from 0 to 1, got "1"; write a number without quotes',
    ],
  ];
  for (const [input, expected] of cases) assertEquals(await netError(input), expected);
});

Deno.test('"check pool4": 0 or 1, default 0', async () => {
  const base = { "multicast address": "233.252.0.64", "multicast port": "6464", reuseaddr: 1 };
  assertEquals((await net(base, new MemoryLogger())).checkPool4, false);
  assertEquals((await net({ ...base, "check pool4": 0 }, new MemoryLogger())).checkPool4, false);
  const log = new MemoryLogger();
  const on = await net({ ...base, "CHECK POOL4": 1 }, log);
  assertEquals(on.checkPool4, true);
  assertEquals(log.lines, []);
  // --check prints it.
  const text = describeConfig({ net: on, mod: { instance: "default" } }, undefined, []);
  assertEquals(text.split("\n").filter((l) => l.startsWith("check pool4")), ["check pool4: 1"]);
});

Deno.test("JSON syntax errors name line and column; non-objects and duplicate keys are refused", () => {
  const syntax = assertThrows(() => parseConfigText("n.json", '{\n  "ttl": 1,\n  "x" 2\n}'), ConfigError);
  assertEquals(
    /^n\.json: invalid JSON at line 3 column \d+ \(.+\); fix the syntax$/.test(syntax.message),
    true,
    syntax.message,
  );
  const notObject = assertThrows(() => parseConfigText("n.json", "[1]"), ConfigError);
  assertEquals(
    notObject.message,
    'n.json: the file must hold one JSON object, got [1]; write it as { "key": value, ... }',
  );
  const dup = assertThrows(() => parseConfigText("n.json", '{"ttl": 1, "TTL": 2}'), ConfigError);
  assertEquals(
    dup.message,
    'n.json: "TTL": the key is given twice (keys are case-insensitive; also "ttl"), got 2; keep one of them',
  );
});

Deno.test("modsocket: instance default, names validated", () => {
  const log = new MemoryLogger();
  assertEquals(validateModSocket(parseConfigText("m.json", "{}"), log), {
    file: "m.json",
    instance: "default",
  });
  assertEquals(
    validateModSocket(parseConfigText("m.json", '{"INSTANCE": "potato"}'), log).instance,
    "potato",
  );
  const remedy =
    'use the name given to `jool instance add` (1–15 printable ASCII characters), e.g. "default"';
  const cases: [unknown, string][] = [
    ["", `m.json: "instance": must not be empty, got ""; ${remedy}`],
    ["a".repeat(16), `m.json: "instance": longer than 15 characters, got "${"a".repeat(16)}"; ${remedy}`],
    [
      "tab\there",
      `m.json: "instance": only printable ASCII characters are allowed, got "tab\\there"; ${remedy}`,
    ],
    ["café", `m.json: "instance": only printable ASCII characters are allowed, got "café"; ${remedy}`],
    [7, `m.json: "instance": must be a string, got 7; ${remedy}`],
  ];
  for (const [value, expected] of cases) {
    assertEquals(
      assertThrows(() => validateInstanceName("m.json", "instance", value), ConfigError).message,
      expected,
    );
  }
  assertEquals(validateInstanceName("m.json", "instance", "a".repeat(15)), "a".repeat(15));
});

Deno.test("address helpers: multicast ranges and scopes", () => {
  assertEquals(isMulticast("224.0.0.1"), true);
  assertEquals(isMulticast("239.255.255.255"), true);
  assertEquals(isMulticast("240.0.0.1"), false);
  assertEquals(isMulticast("ff08::db8:64:64"), true);
  assertEquals(isMulticast("2001:db8::1"), false);
  assertEquals(needsScope("ff02::1"), true);
  assertEquals(needsScope("ff12::1"), true);
  assertEquals(needsScope("ff08::1"), false);
  assertEquals(parseIPv6("::ffff:192.0.2.1")?.slice(10), new Uint8Array([0xff, 0xff, 192, 0, 2, 1]));
  assertEquals(parseIPv6("1::2::3"), undefined);
  assertEquals(parseIPv6("1:2:3:4:5:6:7:8:9"), undefined);
});

Deno.test("a missing file is reported with the argument to use", async () => {
  const { readConfigFile } = await import("../../lib/config/json_file.ts");
  const error = await assertRejects(
    () => readConfigFile("/nonexistent/n.json", "the first argument"),
    ConfigError,
  );
  assertEquals(
    error.message,
    "/nonexistent/n.json: no such file; create it or pass its path as the first argument",
  );
});
