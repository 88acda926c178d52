import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { parseCli, USAGE } from "../../lib/cli.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";
import { runJoold } from "../helpers/daemon_process.ts";

Deno.test("parseCli: upstream's positionals, defaults and options", () => {
  assertEquals(parseCli([]), {
    mode: "run",
    netFile: undefined,
    modFile: undefined,
    statsPort: undefined,
    statsAddresses: undefined,
    logLevel: "info",
    syslog: false,
  });
  const full = parseCli([
    "n.json",
    "m.json",
    "45678",
    "--log-level",
    "debug",
    "--syslog",
    "--stats-address",
    "::",
  ]);
  assertEquals([full.netFile, full.modFile, full.statsPort, full.logLevel, full.syslog], [
    "n.json",
    "m.json",
    45678,
    "debug",
    true,
  ]);
  assertEquals(full.statsAddresses, ["::"]);
  assertEquals(parseCli(["--check"]).mode, "check");
});

Deno.test("the shipped command line knows no test double", () => {
  assert(!USAGE.includes("double"), USAGE);
  const error = assertThrows(() => parseCli(["--kernel-double=4.1.13"]), JooldError);
  assertEquals(error.exitCode, EXIT.USAGE);
});

Deno.test("parseCli: usage errors are one line with exit status 2", () => {
  const cases: [string[], string][] = [
    [
      ["a", "b", "1", "d"],
      'too many arguments, got 4 ("d"); joold takes at most NETSOCKET.json MODSOCKET.json STATS-PORT',
    ],
    [
      ["a", "b", "0"],
      'stats port (third argument): not a port number, got "0"; use a number from 1 to 65535',
    ],
    [
      ["a", "b", "65536"],
      'stats port (third argument): not a port number, got "65536"; use a number from 1 to 65535',
    ],
    [
      ["a", "b", "x1"],
      'stats port (third argument): not a port number, got "x1"; use a number from 1 to 65535',
    ],
    [["--log-level", "loud"], '--log-level: unknown level, got "loud"; use error, warn, info or debug'],
    [
      ["--stats-address", "localhost"],
      '--stats-address: not an IP address, got "localhost"; use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::',
    ],
  ];
  for (const [args, message] of cases) {
    const error = assertThrows(() => parseCli(args), JooldError);
    assertEquals([error.message, error.exitCode], [message, EXIT.USAGE]);
  }
  const unknown = assertThrows(() => parseCli(["--frobnicate"]), JooldError);
  assert(
    unknown.message.includes("--frobnicate") && unknown.message.endsWith("; see joold --help"),
    unknown.message,
  );
});

/** Writes files into a fresh temp dir and returns it. */
async function workdir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "joold-cli-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return dir;
}

const GOOD_NET = JSON.stringify({
  "multicast address": "233.252.0.64",
  "multicast port": "6464",
  reuseaddr: 1,
});

Deno.test("daemon process: bad input → exactly one stderr line and the documented status", async () => {
  const dir = await workdir({
    "net.json": GOOD_NET,
    "bad.json": '{ "multicast address": "233.252.0.64",\n  "multicast port": }',
    "array.json": "[]",
    "nomcast.json": JSON.stringify({ "multicast address": "192.0.2.1", "multicast port": "6464" }),
    "mod-long.json": JSON.stringify({ instance: "x".repeat(16) }),
  });
  try {
    const cases: [string[], number, string | RegExp][] = [
      [
        ["--check", "missing.json"],
        EXIT.CONFIG,
        "joold: missing.json: no such file; create it or pass its path as the first argument",
      ],
      [
        ["--check", "net.json", "nomod.json"],
        EXIT.CONFIG,
        "joold: nomod.json: no such file; create it or pass its path as the second argument",
      ],
      [
        ["--check", "bad.json"],
        EXIT.CONFIG,
        /^joold: bad\.json: invalid JSON at line 2 column \d+ \(.+\); fix the syntax$/,
      ],
      [
        ["--check", "array.json"],
        EXIT.CONFIG,
        'joold: array.json: the file must hold one JSON object, got []; write it as { "key": value, ... }',
      ],
      [
        ["--check", "nomcast.json"],
        EXIT.CONFIG,
        'joold: nomcast.json: "multicast address": not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 is ff00::/8), got "192.0.2.1"; use the sync group\'s address, e.g. 233.252.0.64 or ff08::db8:64:64',
      ],
      [
        ["--check", "net.json", "mod-long.json"],
        EXIT.CONFIG,
        `joold: mod-long.json: "instance": longer than 15 characters, got "${
          "x".repeat(16)
        }"; use the name given to \`jool instance add\` (1–15 printable ASCII characters), e.g. "default"`,
      ],
      [
        ["--check", "net.json", "mod.json", "99999"],
        EXIT.USAGE,
        'joold: stats port (third argument): not a port number, got "99999"; use a number from 1 to 65535',
      ],
      [
        ["--check", "."],
        EXIT.CONFIG,
        "joold: .: this is a directory; pass the file's path as the first argument",
      ],
    ];
    for (const [args, code, expected] of cases) {
      const result = await runJoold(args, dir);
      const lines = result.stderr.trimEnd().split("\n");
      assertEquals(result.code, code, `${args.join(" ")}: ${result.stderr}`);
      assertEquals(lines.length, 1, `${args.join(" ")}: one line expected, got:\n${result.stderr}`);
      if (typeof expected === "string") assertEquals(lines[0], expected);
      else assert(expected.test(lines[0]), lines[0]);
      assert(!result.stderr.includes("    at "), "no stack trace");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon process: --check prints the effective configuration; default modsocket absent → instance default", async () => {
  const dir = await workdir({ "netsocket.json": GOOD_NET });
  try {
    const result = await runJoold(["--check"], dir);
    assertEquals(result.code, 0, result.stderr);
    assert(result.stdout.includes("multicast address: 233.252.0.64\n"), result.stdout);
    assert(result.stdout.includes("instance: default\n"), result.stdout);
    assert(result.stdout.includes("stats server: off"), result.stdout);
    assert(
      result.stderr.includes('modsocket.json not found in the working directory; serving instance "default"'),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon process: --help and --version exit 0", async () => {
  const help = await runJoold(["--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.startsWith("Usage: joold [OPTIONS] [NETSOCKET.json] [MODSOCKET.json] [STATS-PORT]"));
  const version = await runJoold(["--version"]);
  assertEquals(version.code, 0);
  assert(/^joold \d+\.\d+\.\d+ /.test(version.stdout), version.stdout);
});
