/**
 * systemd notification (sd_notify): the pure protocol module by vectors; the libc sender against a real
 * listening unix datagram socket; and the real daemon's real start-up with `$NOTIFY_SOCKET` pointing at one —
 * Jool absent (main.ts: no READY, the error as STATUS, exit status 5) and the kernel double (READY, watchdog
 * pings, STOPPING on SIGTERM, exit 0) — run with exactly the operators' flags (DAEMON_FLAGS).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "../helpers/daemon_process.ts";
import { Daemon } from "../helpers/double_daemon.ts";
import {
  notifySettings,
  notifySunPath,
  readyMessage,
  runningStatus,
  statusLine,
  statusMessage,
  stoppingMessage,
  SUN_PATH_BYTES,
  tickMessage,
  watchdogInterval,
} from "../../lib/systemd/notify_protocol.ts";
import { SystemdNotifier } from "../../lib/systemd/notifier.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { UnixDatagramSender } from "../../ffi/unix_datagram.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

// ---- the pure module ---------------------------------------------------------------------------------------

Deno.test("notify protocol: NOTIFY_SOCKET forms as sun_path bytes", () => {
  // A path: its bytes and the terminating NUL.
  assertEquals(notifySunPath("/run/systemd/notify"), Uint8Array.from([...bytes("/run/systemd/notify"), 0]));
  // An abstract name: "@" becomes the leading NUL; no terminating NUL (the length says where it ends).
  assertEquals(
    notifySunPath("@/org/freedesktop/systemd1/notify/42"),
    Uint8Array.from([
      0,
      ...bytes("/org/freedesktop/systemd1/notify/42"),
    ]),
  );
  // The longest that fit in sun_path's 108 bytes, and one more.
  const longest = "/" + "a".repeat(SUN_PATH_BYTES - 2);
  assertEquals((notifySunPath(longest) as Uint8Array).length, SUN_PATH_BYTES);
  assert(typeof notifySunPath(longest + "a") === "string");
  assertEquals((notifySunPath("@" + "a".repeat(SUN_PATH_BYTES - 1)) as Uint8Array).length, SUN_PATH_BYTES);
  assert(typeof notifySunPath("@" + "a".repeat(SUN_PATH_BYTES)) === "string");
  // Refused: relative paths, a bare "@", vsock addresses (newer systemd), NUL inside a path.
  for (const bad of ["run/notify", "./notify", "@", "vsock:2:1234", "/a\0b"]) {
    const result = notifySunPath(bad);
    assert(typeof result === "string" && result.startsWith(`NOTIFY_SOCKET=${JSON.stringify(bad)}: `), bad);
  }
});

Deno.test("notify protocol: WATCHDOG_USEC and WATCHDOG_PID", () => {
  const pid = 4242;
  const vectors: [string | undefined, string | undefined, number | undefined | "warning"][] = [
    [undefined, undefined, undefined], // no watchdog asked for
    ["10000000", undefined, 5000], // WatchdogSec=10s: ping every 5 s
    ["10000000", "4242", 5000], // the watchdog is ours
    ["10000000", "4243", undefined], // another process's (a forking parent's, say): not ours to ping
    ["3", undefined, 1], // never below 1 ms
    ["200000", undefined, 100],
    ["0", undefined, "warning"],
    ["-5", undefined, "warning"],
    ["10s", undefined, "warning"],
    ["", undefined, "warning"],
    ["99999999999999999999", undefined, "warning"],
    ["10000000", "0", "warning"],
    ["10000000", "self", "warning"],
  ];
  for (const [usec, watchdogPid, expected] of vectors) {
    const got = watchdogInterval(usec, watchdogPid, pid);
    const label = `WATCHDOG_USEC=${usec} WATCHDOG_PID=${watchdogPid}`;
    if (expected === "warning") assert(typeof got === "string" && got.includes("no watchdog pings"), label);
    else assertEquals(got, expected, label);
  }
});

Deno.test("notify protocol: the environment as a whole", () => {
  const envOf = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(notifySettings(envOf({}), 1), { kind: "off" });
  assertEquals(notifySettings(envOf({ NOTIFY_SOCKET: "", WATCHDOG_USEC: "1000000" }), 1), { kind: "off" });
  const relative = notifySettings(envOf({ NOTIFY_SOCKET: "notify" }), 1);
  assertEquals(relative.kind, "invalid");
  assertEquals(notifySettings(envOf({ NOTIFY_SOCKET: "@n", WATCHDOG_USEC: "4000000" }), 7), {
    kind: "on",
    settings: { socket: "@n", sunPath: Uint8Array.of(0, 110), watchdogIntervalMs: 2000, warnings: [] },
  });
  const badWatchdog = notifySettings(envOf({ NOTIFY_SOCKET: "/n", WATCHDOG_USEC: "x" }), 7);
  assert(badWatchdog.kind === "on");
  assertEquals(badWatchdog.settings.watchdogIntervalMs, undefined);
  assertEquals(badWatchdog.settings.warnings.length, 1);
});

Deno.test("notify protocol: the datagrams byte for byte", () => {
  assertEquals(text(readyMessage("up")), "READY=1\nSTATUS=up");
  assertEquals(
    text(statusMessage("failed (exit status 5): no Jool")),
    "STATUS=failed (exit status 5): no Jool",
  );
  assertEquals(text(tickMessage(true, "n")), "WATCHDOG=1\nSTATUS=n");
  assertEquals(text(tickMessage(false, "n")), "STATUS=n");
  assertEquals(text(stoppingMessage("bye")), "STOPPING=1\nSTATUS=bye");
  // A status can never add an assignment of its own: line breaks and control characters become spaces.
  assertEquals(statusLine("a\nREADY=1\r\tb\x00c"), "a READY=1 b c");
  assertEquals(text(statusMessage("x\nWATCHDOG=1")), "STATUS=x WATCHDOG=1");
  assertEquals(statusLine("é".repeat(300)), "é".repeat(199) + "…");
  assertEquals(
    runningStatus({
      instance: "default",
      group: "ff08::db8:64:64%eth1",
      port: 6400,
      sentToGroup: 3,
      sentToKernel: 5,
      dropped: 1,
    }),
    'relaying instance "default" ⇄ group ff08::db8:64:64%eth1 port 6400: ' +
      "3 batches to the group, 5 to the kernel, 1 dropped",
  );
});

// ---- the socket ----------------------------------------------------------------------------------------------

/** A listening unix datagram socket in a fresh temp dir, collecting what arrives, as systemd's would. */
class NotifyListener {
  readonly messages: string[] = [];
  readonly path: string;
  readonly #dir: string;
  readonly #socket: Deno.DatagramConn;
  readonly #done: Promise<void>;
  #wake: (() => void)[] = [];

  private constructor(dir: string) {
    this.#dir = dir;
    this.path = `${dir}/notify`;
    this.#socket = Deno.listenDatagram({ transport: "unixpacket", path: this.path });
    this.#done = this.#receive();
  }

  static async open(): Promise<NotifyListener> {
    return new NotifyListener(await Deno.makeTempDir({ prefix: "joold-notify-" }));
  }

  async #receive(): Promise<void> {
    try {
      for (;;) {
        const [data] = await this.#socket.receive();
        this.messages.push(text(data));
        for (const wake of this.#wake.splice(0)) wake();
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource) && !(error instanceof Deno.errors.Interrupted)) {
        throw error;
      }
    }
  }

  /** Waits for `condition` over the messages; fails after the hang guard with what arrived. */
  async until(what: string, condition: (messages: string[]) => boolean, log: () => string[] = () => []) {
    const deadline = Date.now() + 20_000;
    while (!condition(this.messages)) {
      if (Date.now() > deadline) {
        throw new Error(
          `gave up waiting for ${what}; received ${JSON.stringify(this.messages)}; log:\n${log().join("\n")}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        timer = setTimeout(resolve, 500);
      });
      clearTimeout(timer);
    }
  }

  /**
   * Everything the daemon sent, once it has exited: a datagram of our own goes in last and, unix datagram
   * sockets keeping order, is read last, so no wait has to guess how long a late message might take.
   */
  async drain(): Promise<string[]> {
    const sentinel = `sentinel ${crypto.randomUUID()}`;
    const sender = UnixDatagramSender.open();
    try {
      sender.send(Uint8Array.from([...bytes(this.path), 0]), bytes(sentinel));
    } finally {
      sender.close();
    }
    await this.until("the sentinel", (messages) => messages.includes(sentinel));
    return this.messages.slice(0, this.messages.indexOf(sentinel));
  }

  async close(): Promise<void> {
    this.#socket.close();
    await this.#done;
    await Deno.remove(this.#dir, { recursive: true });
  }
}

Deno.test("notify sender: datagrams reach a listening unix socket; nobody listening is an error", async () => {
  const listener = await NotifyListener.open();
  const sender = UnixDatagramSender.open();
  try {
    sender.send(notifySunPath(listener.path) as Uint8Array, readyMessage("up"));
    sender.send(notifySunPath(listener.path) as Uint8Array, stoppingMessage("bye"));
    await listener.until("two datagrams", (m) => m.length === 2);
    assertEquals(listener.messages, ["READY=1\nSTATUS=up", "STOPPING=1\nSTATUS=bye"]);
    let error: unknown;
    try {
      sender.send(notifySunPath(`${listener.path}.absent`) as Uint8Array, readyMessage("up"));
    } catch (e) {
      error = e;
    }
    assert(error instanceof Error && error.name === "UnixDatagramError", String(error));
    assert(error.message.startsWith("sendto: No such file or directory"), error.message);
  } finally {
    sender.close();
    await listener.close();
  }
});

Deno.test("notifier: off without NOTIFY_SOCKET; a failing socket is one warning, never an exception", () => {
  const quiet = new MemoryLogger();
  const off = SystemdNotifier.fromEnvironment(quiet, () => undefined, 1);
  off.ready(() => "up");
  off.failed(new Error("x"));
  off.stopping();
  off.close();
  assertEquals(off.enabled, false);
  assertEquals(quiet.lines, []);

  const log = new MemoryLogger();
  const env: Record<string, string> = { NOTIFY_SOCKET: "/nonexistent/joold-test/notify" };
  const broken = SystemdNotifier.fromEnvironment(log, (name) => env[name], 1);
  try {
    assertEquals(broken.enabled, true);
    broken.ready(() => "up");
    broken.failed(new Error("first\nsecond"));
    broken.stopping();
  } finally {
    broken.close();
  }
  assertEquals(log.lines.filter((l) => !l.startsWith("debug: ")), [
    "warn: cannot notify systemd (ready) at /nonexistent/joold-test/notify: sendto: No such file or directory",
  ]);

  const invalid = new MemoryLogger();
  SystemdNotifier.fromEnvironment(invalid, (name) => name === "NOTIFY_SOCKET" ? "relative" : undefined, 1)
    .close();
  assertEquals(invalid.lines.length, 1);
  assert(invalid.lines[0].startsWith('warn: not notifying systemd: NOTIFY_SOCKET="relative": '));
});

// ---- the real daemon ---------------------------------------------------------------------------------------

function freePort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

/** netsocket.json on loopback (documentation group) and modsocket.json, in a fresh temp dir. */
async function workdir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "joold-notify-proc-" });
  await Deno.writeTextFile(
    `${dir}/netsocket.json`,
    JSON.stringify({
      "multicast address": "233.252.0.64",
      "multicast port": String(freePort()),
      "in interface": "127.0.0.1",
      "out interface": "127.0.0.1",
      "reuseaddr": 1,
    }),
  );
  await Deno.writeTextFile(`${dir}/modsocket.json`, '{ "instance": "default" }');
  return dir;
}

function joolLoaded(): boolean {
  try {
    Deno.statSync("/sys/module/jool");
    return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return false;
  }
}

const JOOL_ABSENT_LINE = "Jool's Generic Netlink family is absent: load the jool module (modprobe jool)";

Deno.test("notify, real daemon: Jool absent → no READY, the error as STATUS, exit status 5", async () => {
  if (joolLoaded()) {
    console.log("skipping: this host has Jool loaded, so the absent-family path cannot be shown here");
    return;
  }
  const dir = await workdir();
  const listener = await NotifyListener.open();
  try {
    const out = await new Deno.Command(DENO, {
      args: ["run", "--quiet", ...DAEMON_FLAGS, `${ROOT}main.ts`],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: "200000" },
    }).output();
    const stderr = text(out.stderr);
    assertEquals(out.code, 5, stderr);
    assertEquals(stderr, `joold: ${JOOL_ABSENT_LINE}\n`); // nothing else: notification added no line
    const messages = await listener.drain();
    assertEquals(messages, [`STATUS=failed (exit status 5): ${JOOL_ABSENT_LINE}`]);
  } finally {
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notify, real daemon with the kernel double: READY, watchdog pings, STOPPING on SIGTERM", async () => {
  const dir = await workdir();
  const listener = await NotifyListener.open();
  // WatchdogSec=0.2s: a ping every 100 ms, so a few arrive within the test.
  const daemon = new Daemon({ dir, env: { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: "200000" } });
  try {
    await listener.until(
      "READY=1",
      (m) => m.some((d) => d.split("\n").includes("READY=1")),
      () => daemon.log,
    );
    const ready = listener.messages.find((d) => d.startsWith("READY=1"))!;
    assertEquals(ready.split("\n")[0], "READY=1");
    assert(
      ready.split("\n")[1].startsWith('STATUS=relaying instance "default" ⇄ group 233.252.0.64 port '),
      ready,
    );
    assert(ready.endsWith(": 0 batches to the group, 0 to the kernel, 0 dropped"), ready);
    // READY=1 follows the log line the tests and operators take as "up".
    assert(daemon.log.some((l) => l.includes("relaying instance")), daemon.log.join("\n"));
    await listener.until(
      "two watchdog pings",
      (m) => m.filter((d) => d.startsWith("WATCHDOG=1\nSTATUS=relaying instance")).length >= 2,
      () => daemon.log,
    );
    daemon.kill("SIGTERM");
    assertEquals((await daemon.status).code, 0, daemon.log.join("\n"));
    const messages = await listener.drain();
    assertEquals(messages[0], ready); // nothing before READY
    assertEquals(messages.filter((d) => d.includes("READY=1")).length, 1);
    assertEquals(messages.at(-1), "STOPPING=1\nSTATUS=stopping: signal received, closing"); // and nothing after
    assertEquals(messages.filter((d) => d.startsWith("STATUS=failed")), []);
    assert(!daemon.log.some((l) => l.includes("notify")), daemon.log.join("\n")); // no send failed
  } finally {
    await daemon.stop();
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
