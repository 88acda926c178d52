/**
 * The real daemon process on this host's loopback, with the test-only kernel double: the stats server answers
 * nc queries (the six NAME,value lines byte for byte, json, prometheus) with counters moved by real traffic, and
 * SIGTERM/SIGINT end it with status 0. No root needed.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { Daemon, JOOLD_ACK } from "../helpers/double_daemon.ts";
import { sessionBatch } from "../helpers/kernel_messages.ts";
import {
  findSocketDescriptor,
  setMulticastInterfaceV4,
  socketDescriptorsBoundTo,
} from "../../ffi/socket_options.ts";
import { addressBytes } from "../../lib/net/address.ts";

const GROUP = "233.252.0.64";

function freePort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

async function workdir(groupPort: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "joold-proc-" });
  await Deno.writeTextFile(
    `${dir}/netsocket.json`,
    JSON.stringify({
      "multicast address": GROUP,
      "multicast port": String(groupPort),
      "in interface": "127.0.0.1",
      "out interface": "127.0.0.1",
      "reuseaddr": 1,
    }),
  );
  await Deno.writeTextFile(`${dir}/modsocket.json`, '{ "instance": "default" }');
  return dir;
}

const ncPath = ["/usr/bin/nc", "/bin/nc"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false; // not there: try the next candidate
  }
});
const ci = Deno.env.get("CI") === "true";
if (!ncPath && !ci) console.log("skipping the nc stats test: no nc (apt-get install netcat-openbsd)");

/** `printf REQUEST | nc -u -w1 127.0.0.1 PORT`, as an operator's cron job would. */
async function nc(port: number, request: string): Promise<string> {
  const child = new Deno.Command(ncPath!, {
    args: ["-u", "-w1", "127.0.0.1", String(port)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(request));
  await writer.close();
  const out = await child.output();
  return new TextDecoder().decode(out.stdout);
}

/**
 * Sends a datagram to the group through loopback, as a peer router would: from a socket on the group's port
 * (reuseaddr, like the daemon's) joined on 127.0.0.1 with multicast loopback on, as loopback delivery needs.
 */
async function sendToGroup(port: number, payload: Uint8Array): Promise<void> {
  const bound = { family: 4 as const, bytes: addressBytes(GROUP)!, port };
  const before = socketDescriptorsBoundTo(bound);
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: GROUP,
    port,
    reuseAddress: true,
    loopback: true,
  });
  try {
    const fd = findSocketDescriptor(bound, before);
    await socket.joinMulticastV4(GROUP, "127.0.0.1");
    setMulticastInterfaceV4(fd, addressBytes("127.0.0.1")!);
    await socket.send(payload, { transport: "udp", hostname: GROUP, port });
  } finally {
    socket.close();
  }
}

Deno.test({
  name: "daemon process: stats server answers nc with the six lines, json and prometheus; SIGTERM exits 0",
  ignore: !ncPath && !ci,
  async fn() {
    assert(ncPath, "CI=true but nc is missing (apt-get install netcat-openbsd)");
    const groupPort = freePort();
    const statsPort = freePort();
    const dir = await workdir(groupPort);
    const daemon = new Daemon({ dir, statsPort });
    try {
      await daemon.ready();
      // Kernel → network: one batch of 2 sessions (80 bytes) becomes one datagram. On `lo` every datagram sent
      // also comes back in (the device loops it, whatever IP_MULTICAST_LOOP says), so the daemon hears its own
      // batch once: a peer on a real link would not.
      const own = sessionBatch(0, 2);
      await daemon.inject(own);
      await daemon.until("the ACK and the echo", () => daemon.messages.some((m) => m.cmd === JOOLD_ACK));
      await daemon.until("the echo's JOOLD_ADD", () => daemon.adds().length === 1);
      // Network → kernel: a peer's datagram of 3 sessions (120 bytes) becomes one JOOLD_ADD.
      const fromPeer = sessionBatch(10, 3);
      await sendToGroup(groupPort, fromPeer);
      await daemon.until("the peer's JOOLD_ADD", () => daemon.adds().length === 2);
      assertEquals(daemon.adds(), [own, fromPeer]);

      const six = "KERNEL_SENT_PKTS,2\nKERNEL_SENT_BYTES,200\nNET_RCVD_PKTS,2\nNET_RCVD_BYTES,200\n" +
        "NET_SENT_PKTS,1\nNET_SENT_BYTES,80\n";
      assertEquals(await nc(statsPort, "\n"), six);
      assertEquals(await nc(statsPort, "anything\n"), six); // any datagram gets the six lines (nc sends nothing for "")
      const json = JSON.parse(await nc(statsPort, "json\n"));
      assertEquals(json.instance, "default");
      assertEquals(json.kernelVersion, "4.1.13");
      assertEquals(json.sessionFormat, "C");
      assertEquals(json.counters.KERNEL_RCVD_BATCHES, 1);
      assertEquals(json.counters.KERNEL_RCVD_SESSIONS, 2);
      assertEquals(json.counters.KERNEL_ACKS_SENT, 1);
      assertEquals(json.counters.NET_RCVD_SESSIONS, 5);
      assertEquals(json.counters.KERNEL_SENT_SESSIONS, 5);
      assertEquals(Object.values(json.drops as Record<string, number>).reduce((a, b) => a + b, 0), 0);
      const prometheus = await nc(statsPort, "prometheus\n");
      assert(prometheus.includes("# TYPE joold_net_sent_pkts_total counter\njoold_net_sent_pkts_total 1\n"));
      assert(prometheus.includes("joold_kernel_sent_bytes_total 200\n"));

      daemon.kill("SIGTERM");
      const status = await daemon.status;
      assertEquals(status.code, 0, daemon.log.join("\n"));
      await daemon.stop();
      assert(daemon.log.some((l) => l.includes("SIGTERM received; closing")), daemon.log.join("\n"));
      assert(daemon.log.some((l) => l.includes("joold info: stopped")), daemon.log.join("\n"));
    } finally {
      await daemon.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("daemon process: SIGINT closes and exits 0; a second SIGINT exits at once", async () => {
  const dir = await workdir(freePort());
  const calm = new Daemon({ dir });
  const impatient = new Daemon({ dir: await workdir(freePort()) });
  try {
    await calm.ready();
    await impatient.ready();
    calm.kill("SIGINT");
    assertEquals((await calm.status).code, 0);
    impatient.kill("SIGINT");
    impatient.kill("SIGINT");
    assertEquals((await impatient.status).code, 0);
  } finally {
    await calm.stop();
    await impatient.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon process: SIGHUP (systemctl reload) without a key file: logged, the daemon keeps running", async () => {
  const port = freePort();
  const dir = await workdir(port);
  const daemon = new Daemon({ dir });
  try {
    await daemon.ready();
    daemon.kill("SIGHUP");
    await daemon.until("the SIGHUP line", () => daemon.log.some((l) => l.includes("nothing to reload")));
    let exited = false;
    daemon.status.then(() => exited = true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert(!exited, `SIGHUP ended the daemon:\n${daemon.log.join("\n")}`);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon process: without Jool in the kernel, one line and exit status 5", async () => {
  let joolLoaded = false;
  try {
    Deno.statSync("/sys/module/jool");
    joolLoaded = true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (joolLoaded) {
    console.log("skipping: this host has Jool loaded, so the absent-family path cannot be shown here");
    return;
  }
  const dir = await workdir(freePort());
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--unstable-net",
        "--allow-net",
        "--allow-ffi",
        "--allow-read",
        new URL("../../main.ts", import.meta.url).pathname,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 5);
    assertEquals(
      new TextDecoder().decode(out.stderr),
      "joold: Jool's Generic Netlink family is absent: load the jool module (modprobe jool)\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("daemon process: the Jool module gone under a running daemon: one line, exit status 5", async () => {
  const dir = await workdir(freePort());
  const daemon = new Daemon({ dir, args: ["--kernel-double-gone-after=500"] });
  try {
    await daemon.ready();
    const status = await daemon.status;
    await daemon.stop();
    assertEquals(status.code, 5, daemon.log.join("\n"));
    const line =
      "joold: the Jool module went away under the daemon: the kernel double says so; its Generic " +
      "Netlink family and multicast group went with it, so joold exits for its service manager to start it again";
    assertEquals(daemon.log.filter((l) => l.startsWith("joold: ")), [line]);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
