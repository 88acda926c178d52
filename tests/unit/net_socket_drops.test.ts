/**
 * The multicast socket's receive buffer and its kernel-side drop counter (NET_SOCKET_DROPS): a burst that
 * overflows the socket while joold is not reading is counted, not lost silently.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { NetChannel, RECEIVE_BUFFER_BYTES } from "../../lib/net/channel.ts";
import { dropsFromProcNetUdp } from "../../lib/net/socket_drops.ts";
import { Stats } from "../../lib/stats.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { getIntOption, SOCKOPT } from "../../ffi/socket_options.ts";
import type { NetSocketConfig } from "../../lib/config/types.ts";

Deno.test("dropsFromProcNetUdp reads the drops column of the socket with that inode", () => {
  const text =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
    "  101: 40FCFCE9:1940 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n" +
    "  102: 40FCFCE9:1941 00000000:0000 07 00000000:0003F000 00:00000000 00000000     0        0 4242 2 0000000000000000 315\n";
  assertEquals(dropsFromProcNetUdp(text, 4242), 315);
  assertEquals(dropsFromProcNetUdp(text, 777), 0);
  assertEquals(dropsFromProcNetUdp(text, 9), undefined);
});

Deno.test("net channel: large receive buffer; an overflowing burst shows up in NET_SOCKET_DROPS", async () => {
  const lo = { text: "127.0.0.1", name: "lo", address: "127.0.0.1" };
  const port = 46900 + (Deno.pid % 50);
  const config: NetSocketConfig = {
    file: "netsocket.json",
    groupAddress: "233.252.0.69",
    family: 4,
    port,
    inInterface: lo,
    outInterface: lo,
    reuseaddr: 1,
    ttl: 1,
  };
  const stats = new Stats();
  const channel = await NetChannel.open(config, { stats, log: new MemoryLogger() });
  try {
    const granted = getIntOption(channel.descriptor, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUF);
    if (Deno.uid() === 0) assert(granted >= RECEIVE_BUFFER_BYTES, `granted ${granted}`);
    assertEquals(stats.get("NET_SOCKET_DROPS"), 0);
    // Nobody reads the channel: send more than its buffer holds (on lo, the channel's own send comes back in).
    const datagram = new Uint8Array(1400);
    const count = Math.ceil((granted * 2) / 1400);
    for (let i = 0; i < count; i++) await channel.send(datagram);
    const drops = stats.get("NET_SOCKET_DROPS");
    assert(drops > 0, `no drop counted after ${count} datagrams into a ${granted}-byte buffer`);
    assertEquals(stats.snapshot().counters.NET_SOCKET_DROPS, drops);
  } finally {
    channel.close();
  }
});
