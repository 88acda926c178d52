/**
 * `"check pool4": 1` end to end: the real daemon B (main.ts through the kernel double, whose pool4 is given by
 * `--kernel-double-pool4=`, listed two entries per reply) in one namespace, a plain sender in another. Datagrams
 * with sessions inside and outside B's pool4: only the inside ones reach B's kernel double, re-encoded as whole
 * entries, and every session dropped is counted.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, ROOT } from "../helpers/daemon_process.ts";
import { Lab, type LineProcess, netnsTest } from "./namespaces.ts";
import { Daemon, JOOLD_ACK, queryStats } from "../helpers/double_daemon.ts";
import { sessionBatch, sessionEntry } from "../helpers/kernel_messages.ts";
import { concatBytes as concat } from "../../lib/jool/netlink.ts";

const STATS_PORT = 46610;
const NEEDS = { files: [`${ROOT}tests/helpers/kernel_double.ts`, `${ROOT}lib/kernel/pool4_watch.ts`] };
/** B's pool4: five entries over three marks and protocols; sessionOf(n) is UDP 192.0.2.1#(2000+n). */
const POOL4 = "tcp:198.51.100.0/24:1-65535,tcp:203.0.113.0/24:1-65535:1,tcp:192.0.2.0/24:1000-1999:2," +
  "udp:192.0.2.1/32:2000-2009,icmp:192.0.2.1/32:0-65535";

netnsTest('daemon with "check pool4": only sessions inside the local pool4 reach the kernel', async () => {
  const lab = new Lab();
  const dirs: string[] = [];
  let b: Daemon | undefined;
  try {
    const nsA = await lab.namespace("a");
    const nsB = await lab.namespace("b");
    await lab.link({ ns: nsA, name: "eth0", addresses: ["192.0.2.10/24"] }, {
      ns: nsB,
      name: "eth0",
      addresses: ["192.0.2.20/24"],
    });
    const dir = await Deno.makeTempDir({ prefix: "joold-pool4-b-" });
    dirs.push(dir);
    await Deno.writeTextFile(
      `${dir}/netsocket.json`,
      JSON.stringify({
        "multicast address": "233.252.0.64",
        "multicast port": "6464",
        "in interface": "192.0.2.20",
        "out interface": "192.0.2.20",
        reuseaddr: 1,
        "check pool4": 1,
      }),
    );
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    b = new Daemon({ ns: nsB, dir, statsPort: STATS_PORT, args: [`--kernel-double-pool4=${POOL4}`] });
    await b.ready();
    assert(b.log.some((l) => l.includes("pool4 read: 5 entries (TCP 3, UDP 1, ICMP 1)")), b.log.join("\n"));
    await b.inject(sessionEntry(1));
    await b.until("B's first batch sent", () => b!.messages.some((m) => m.cmd === JOOLD_ACK));

    const sender: LineProcess = lab.deno(nsA, `${ROOT}tests/netns/channel_peer.ts`, [JSON.stringify({
      file: "sender",
      groupAddress: "233.252.0.64",
      family: 4,
      port: 6464,
      inInterface: { text: "192.0.2.10", address: "192.0.2.10" },
      outInterface: { text: "192.0.2.10", address: "192.0.2.10" },
      reuseaddr: 1,
      ttl: 1,
    })], DAEMON_FLAGS);
    await sender.waitFor((l) => l.startsWith("ready "));
    const hex = (p: Uint8Array) => Array.from(p, (x) => x.toString(16).padStart(2, "0")).join("");
    const allOutside = sessionBatch(30, 4); // ports 2030–2033
    const mixed = concat([sessionEntry(20), sessionEntry(5), sessionEntry(21)]);
    const allInside = sessionBatch(0, 3);
    for (const datagram of [allOutside, mixed, allInside]) await sender.write(`send ${hex(datagram)}`);
    await sender.waitFor((l) => l === "sent true", 3);
    await b.until("two JOOLD_ADDs", () => b!.adds().length >= 2);
    assertEquals(b.adds(), [sessionEntry(5), allInside]);

    const s = await queryStats(nsB, STATS_PORT);
    assertEquals(s.counters.NET_RCVD_PKTS, 3);
    assertEquals(s.counters.NET_RCVD_SESSIONS, 4);
    assertEquals(s.counters.NET_SESSIONS_OUTSIDE_POOL4, 6);
    assertEquals(s.counters.KERNEL_SENT_SESSIONS, 4);
    assertEquals(s.drops.net_outside_pool4, 1);
    assertEquals(s.counters.POOL4_READ_ERRORS, 0);
    assertEquals(s.pool4Entries, 5);
  } finally {
    await b?.stop();
    await lab.cleanup();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
}, NEEDS);
