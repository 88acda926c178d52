/**
 * The net channel's opt-in paths on the host's loopback (nothing leaves lo): unicast `peers` (wildcard bind,
 * one send per destination) and the `"accept from"` receive path through recvmsg with packet info. The
 * interface check and multi-host cases are in tests/netns/ingress_unicast.test.ts.
 */
import assert from "node:assert/strict";
import type { NetSocketConfig } from "../../lib/config/types.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { NetChannel } from "../../lib/net/channel.ts";
import { isPrefix, parsePrefix, type Prefix } from "../../lib/net/ingress.ts";
import { Stats } from "../../lib/stats.ts";
import {
  findSocketDescriptor,
  setMulticastInterfaceV4,
  socketDescriptorsBoundTo,
} from "../../ffi/socket_options.ts";

function prefix(text: string): Prefix {
  const parsed = parsePrefix(text);
  if (!isPrefix(parsed)) throw new Error(parsed.problem);
  return { ...parsed };
}

function unicastConfig(port: number, extra: Partial<NetSocketConfig> = {}): NetSocketConfig {
  return {
    file: "netsocket.json",
    family: 4,
    port,
    reuseaddr: 1,
    ttl: 1,
    peers: [{ address: "127.0.0.1", port: port + 1 }],
    ...extra,
  };
}

const deps = () => ({ stats: new Stats(), log: new MemoryLogger() });

function sender(hostname: string): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
}

Deno.test("accept from on loopback: a listed source is read, another is dropped and counted", async () => {
  const d = deps();
  const port = 46431;
  const channel = await NetChannel.open(
    unicastConfig(port, { acceptFrom: [{ text: "127.0.0.1/32", ...prefix("127.0.0.1") }] }),
    d,
  );
  const good = sender("127.0.0.1");
  const bad = sender("127.0.0.2");
  try {
    const iterator = channel.receive()[Symbol.asyncIterator]();
    const first = iterator.next();
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
    await bad.send(Uint8Array.of(1, 2, 3), to);
    await bad.send(Uint8Array.of(4, 5, 6), to);
    await good.send(Uint8Array.of(7, 8, 9), to);
    const got = await first;
    assert.deepEqual(got.value?.slice(), Uint8Array.of(7, 8, 9));
    assert.equal(d.stats.drops("net_source_refused"), 2);
    assert.equal(d.stats.drops("net_wrong_interface"), 0);
    assert.equal(d.stats.get("NET_RCVD_PKTS"), 3);
    // Rate-limited: the first refusal is logged, the second falls in the same second.
    const refusals = d.log.lines.filter((l) => l.includes("net_source_refused"));
    assert.equal(refusals.length, 1, d.log.lines.join("\n"));
    assert.match(refusals[0], /from 127\.0\.0\.2 \(net_source_refused: not in "accept from"\)/);

    // close() ends a receive waiting in poll() (within its 250-ms timeout, not for ever).
    const pending = iterator.next();
    channel.close();
    assert.equal((await pending).done, true);
  } finally {
    channel.close();
    good.close();
    bad.close();
  }
});

Deno.test("accept from with in interface lo: a datagram over lo is accepted (IP_PKTINFO says lo)", async () => {
  const d = deps();
  const port = 46433;
  const channel = await NetChannel.open(
    unicastConfig(port, {
      acceptFrom: [{ text: "127.0.0.0/8", ...prefix("127.0.0.0/8") }],
      inInterface: { text: "127.0.0.1", name: "lo", address: "127.0.0.1" },
    }),
    d,
  );
  const peer = sender("127.0.0.3");
  try {
    const first = channel.receive()[Symbol.asyncIterator]().next();
    await peer.send(Uint8Array.of(1), { transport: "udp", hostname: "127.0.0.1", port });
    assert.deepEqual((await first).value?.slice(), Uint8Array.of(1));
    assert.equal(d.stats.drops("net_wrong_interface"), 0);
  } finally {
    channel.close();
    peer.close();
  }
});

Deno.test("peers: every datagram goes to each peer; an unreachable one is counted per destination", async () => {
  const d = deps();
  const port = 46435;
  const one = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: port + 1 });
  const two = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.2", port: port + 2 });
  const channel = await NetChannel.open(
    unicastConfig(port, {
      peers: [
        { address: "127.0.0.1", port: port + 1 },
        { address: "127.0.0.2", port: port + 2 },
        // Port 0 cannot be sent to (EINVAL) and never leaves the host: a failing destination.
        { address: "127.0.0.1", port: 0 },
      ],
    }),
    d,
  );
  try {
    const payload = Uint8Array.of(9, 8, 7);
    assert.equal(await channel.send(payload, 4), false, "not every destination got it");
    assert.deepEqual((await one.receive())[0], payload);
    assert.deepEqual((await two.receive())[0], payload);
    assert.equal(d.stats.get("NET_SENT_PKTS"), 2);
    assert.equal(d.stats.get("NET_SENT_BYTES"), 6);
    assert.equal(d.stats.get("NET_SENT_SESSIONS"), 4, "sessions counted once per datagram");
    assert.equal(d.stats.get("NET_SEND_ERRORS"), 1);
    assert.equal(await channel.send(payload), false);
    assert.equal(d.stats.get("NET_SEND_ERRORS"), 2);
    const lines = d.log.lines.filter((l) => l.includes("could not send"));
    assert.equal(lines.length, 1, "one line a second per destination");
    assert.match(lines[0], /\(to 127\.0\.0\.1:0\)/);
  } finally {
    channel.close();
    one.close();
    two.close();
  }
});

/**
 * Refused datagrams in the flood: enough that the neighbour's readiness is polled well before the last is read
 * (with 1 000 it sometimes was not: Deno polls sockets only every so many event-loop turns).
 */
const FLOOD = 5000;

Deno.test("a flood of refused datagrams does not starve other I/O (a turn every 64 reads)", async () => {
  const d = deps();
  const port = 46439;
  const channel = await NetChannel.open(
    unicastConfig(port, { acceptFrom: [{ text: "127.0.0.1/32", ...prefix("127.0.0.1") }] }),
    d,
  );
  const bad = sender("127.0.0.2");
  const good = sender("127.0.0.1");
  const neighbour = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: port + 1 });
  try {
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
    for (let i = 0; i < FLOOD; i++) await bad.send(Uint8Array.of(i & 0xff), to);
    await good.send(Uint8Array.of(42), to);
    // Another socket's receive (standing in for the kernel channel) has a datagram waiting too: it must complete
    // long before the channel has read the refused ones (without the turns it completes after them all).
    await good.send(Uint8Array.of(7), { transport: "udp", hostname: "127.0.0.1", port: port + 1 });
    let dropsWhenNeighbourRead = -1;
    const neighbourRead = neighbour.receive().then(() => {
      dropsWhenNeighbourRead = d.stats.drops("net_source_refused");
    });
    const got = await channel.receive()[Symbol.asyncIterator]().next();
    await neighbourRead;
    assert.deepEqual(got.value?.slice(), Uint8Array.of(42));
    assert.equal(d.stats.drops("net_source_refused"), FLOOD);
    assert(
      dropsWhenNeighbourRead >= 0 && dropsWhenNeighbourRead < FLOOD,
      `drops when the neighbour's receive completed: ${dropsWhenNeighbourRead}`,
    );
  } finally {
    channel.close();
    bad.close();
    good.close();
    neighbour.close();
  }
});

Deno.test("peers: the wildcard-bound socket does not hear a group another socket of the host joined", async () => {
  const d = deps();
  const port = 46441;
  const channel = await NetChannel.open(unicastConfig(port), d);
  // Another socket on the same port joins 233.252.0.99 on lo and sends to it, looped back to the host.
  const group = "233.252.0.99";
  const bound = { family: 4 as const, bytes: Uint8Array.of(233, 252, 0, 99), port };
  const before = socketDescriptorsBoundTo(bound);
  const other = Deno.listenDatagram({
    transport: "udp",
    hostname: group,
    port,
    reuseAddress: true,
    loopback: true,
  });
  const marker = sender("127.0.0.1");
  try {
    setMulticastInterfaceV4(findSocketDescriptor(bound, before), Uint8Array.of(127, 0, 0, 1));
    await other.joinMulticastV4(group, "127.0.0.1");
    const first = channel.receive()[Symbol.asyncIterator]().next();
    await other.send(Uint8Array.of(6, 6, 6), { transport: "udp", hostname: group, port });
    assert.deepEqual(
      (await other.receive())[0],
      Uint8Array.of(6, 6, 6),
      "the group's datagram was looped back",
    );
    await marker.send(Uint8Array.of(1), { transport: "udp", hostname: "127.0.0.1", port });
    assert.deepEqual(
      (await first).value?.slice(),
      Uint8Array.of(1),
      "the channel's first datagram is the marker",
    );
    assert.equal(d.stats.get("NET_RCVD_PKTS"), 1);
  } finally {
    channel.close();
    other.close();
    marker.close();
  }
});
