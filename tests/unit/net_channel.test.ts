import assert from "node:assert/strict";
import {
  findSocketDescriptor,
  getIntOption,
  getMulticastInterfaceV4,
  getMulticastInterfaceV6,
  getMulticastLoop,
  getMulticastTtl,
  setMulticastInterfaceV4,
  setMulticastInterfaceV6,
  setMulticastLoop,
  socketDescriptorsBoundTo,
  SocketOptionError,
  SOCKOPT,
} from "../../ffi/socket_options.ts";
import type { NetSocketConfig } from "../../lib/config/types.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { addressBytes } from "../../lib/net/address.ts";
import { NET_MAX_PAYLOAD, NetChannel } from "../../lib/net/channel.ts";
import { Stats } from "../../lib/stats.ts";

// Everything stays on lo: in and out interface are pinned to it, so nothing leaves the host.
const LO = 1;

function v4Config(group: string, port: number, extra: Partial<NetSocketConfig> = {}): NetSocketConfig {
  const lo = { text: "127.0.0.1", name: "lo", address: "127.0.0.1" };
  return {
    file: "netsocket.json",
    groupAddress: group,
    family: 4,
    port,
    inInterface: lo,
    outInterface: lo,
    reuseaddr: 1,
    ttl: 3,
    ...extra,
  };
}

function v6Config(group: string, port: number, extra: Partial<NetSocketConfig> = {}): NetSocketConfig {
  const lo = { text: "lo", name: "lo", index: LO };
  return {
    file: "netsocket.json",
    groupAddress: group,
    family: 6,
    port,
    inInterface: lo,
    outInterface: lo,
    reuseaddr: 1,
    ttl: 5,
    ...extra,
  };
}

/** A plain Deno socket on the same group:port, with loopback on, so it hears the channel and vice versa. */
async function peer(config: NetSocketConfig): Promise<Deno.DatagramConn> {
  const address = config.groupAddress!;
  const bound = {
    family: config.family,
    bytes: addressBytes(address)!,
    port: config.port,
    scopeId: config.scope?.index ?? 0,
  };
  const before = socketDescriptorsBoundTo(bound);
  const hostname = config.scope ? `${address}%${config.scope.name}` : address;
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname,
    port: config.port,
    reuseAddress: true,
    loopback: true,
  });
  const fd = findSocketDescriptor(bound, before);
  if (config.family === 4) {
    await conn.joinMulticastV4(address, "127.0.0.1");
    setMulticastInterfaceV4(fd, addressBytes("127.0.0.1")!);
  } else {
    await conn.joinMulticastV6(address, LO);
    setMulticastInterfaceV6(fd, LO);
  }
  return conn;
}

function deps() {
  return { stats: new Stats(), log: new MemoryLogger() };
}

function bytes(length: number, seed: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

/** Sends `payloads` from the peer and collects what the channel yields until `count` datagrams came. */
async function receiveThrough(
  channel: NetChannel,
  count: number,
  send: () => Promise<void>,
): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const iterator = channel.receive()[Symbol.asyncIterator]();
  const first = iterator.next();
  await send();
  let next = await first;
  while (!next.done) {
    got.push(next.value.slice()); // a view of the receive buffer: valid until the next iteration
    if (got.length === count) break;
    next = await iterator.next();
  }
  return got;
}

// IPv6 multicast cannot travel over the host's lo (no MULTICAST flag, no ff00::/8 route: ENETUNREACH), and
// the unit suite does not reconfigure the host: the IPv6 data path is proven in tests/netns/.
const CASES: [string, NetSocketConfig, boolean][] = [
  ["IPv4 233.252.0.21", v4Config("233.252.0.21", 46421), true],
  ["IPv6 ff08::db8:64:22", v6Config("ff08::db8:64:22", 46422), false],
  [
    "IPv6 link-local ff02::db8:64:23%lo",
    v6Config("ff02::db8:64:23", 46423, { scope: { name: "lo", index: LO } }),
    false,
  ],
];
for (const [name, config, dataPath] of CASES) {
  Deno.test(`NetChannel ${name}: options set${dataPath ? ", datagrams in both directions, counters" : ""}`, async () => {
    const d = deps();
    const channel = await NetChannel.open(config, d);
    const other = await peer(config);
    try {
      // Options on the channel's own descriptor.
      const fd = channel.descriptor;
      assert.equal(getMulticastTtl(fd, config.family), config.ttl);
      assert.equal(getMulticastLoop(fd, config.family), false);
      assert.equal(getIntOption(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR), 1);
      if (config.family === 4) assert.equal(getMulticastInterfaceV4(fd), "127.0.0.1");
      else assert.equal(getMulticastInterfaceV6(fd), LO);
      if (!dataPath) return;

      // Peer → channel: a small one, a legal maximum, an oversize one (dropped whole), then a marker.
      const small = bytes(40, 1), max = bytes(NET_MAX_PAYLOAD, 2), big = bytes(NET_MAX_PAYLOAD + 1, 3);
      const marker = bytes(8, 4);
      const destination = {
        transport: "udp" as const,
        hostname: config.scope ? `${config.groupAddress}%${config.scope.name}` : config.groupAddress!,
        port: config.port,
      };
      const got = await receiveThrough(channel, 3, async () => {
        for (const p of [small, max, big, marker]) await other.send(p, destination);
      });
      assert.deepEqual(got, [small, max, marker]);
      assert.equal(d.stats.get("NET_RCVD_PKTS"), 4);
      assert.equal(d.stats.get("NET_RCVD_BYTES"), 40 + NET_MAX_PAYLOAD + NET_MAX_PAYLOAD + 1 + 8);
      assert.equal(d.stats.drops("net_oversize"), 1);

      // Channel → peer. The channel never loops back to local sockets (like upstream), so turn loopback
      // on for this test only.
      setMulticastLoop(fd, config.family, true);
      const payload = bytes(100, 5);
      assert.equal(await channel.send(payload, 2), true);
      for (;;) {
        const [datagram] = await other.receive();
        if (datagram.length === payload.length) {
          assert.deepEqual(datagram, payload);
          break;
        } // else: the peer's own looped-back datagrams
      }
      assert.equal(d.stats.get("NET_SENT_PKTS"), 1);
      assert.equal(d.stats.get("NET_SENT_BYTES"), 100);
      assert.equal(d.stats.get("NET_SENT_SESSIONS"), 2);
      assert.equal(d.stats.get("NET_SEND_ERRORS"), 0);
    } finally {
      channel.close();
      other.close();
    }
  });
}

Deno.test("NetChannel: close() ends a pending receive loop; close is idempotent", async () => {
  const channel = await NetChannel.open(v4Config("233.252.0.24", 46424), deps());
  const loop = (async () => {
    let n = 0;
    for await (const _ of channel.receive()) n++;
    return n;
  })();
  await new Promise((resolve) => setTimeout(resolve, 0));
  channel.close();
  channel.close();
  assert.equal(await loop, 0);
});

Deno.test("NetChannel: a failed send returns false, counts NET_SEND_ERRORS and logs without throwing", async () => {
  const d = deps();
  const channel = await NetChannel.open(v4Config("233.252.0.25", 46425), d);
  try {
    const tooBig = new Uint8Array(70_000); // larger than any UDP datagram: EMSGSIZE
    assert.equal(await channel.send(tooBig, 9), false);
    assert.equal(await channel.send(tooBig), false);
    assert.equal(d.stats.get("NET_SEND_ERRORS"), 2);
    assert.equal(d.stats.get("NET_SENT_PKTS"), 0);
    assert.equal(d.stats.get("NET_SENT_SESSIONS"), 0);
    const errors = d.log.lines.filter((l) =>
      l.startsWith("error: could not send a datagram to the network: ")
    );
    assert.ok(errors.length >= 1 && errors.length <= 2, d.log.lines.join("\n"));
  } finally {
    channel.close();
  }
});

Deno.test("NetChannel: two channels on one group:port with reuseaddr 1 both receive", async () => {
  const config = v4Config("233.252.0.26", 46426);
  const a = await NetChannel.open(config, deps());
  const b = await NetChannel.open(config, deps());
  const other = await peer(config);
  try {
    assert.notEqual(a.descriptor, b.descriptor);
    const payload = bytes(64, 6);
    const ia = a.receive()[Symbol.asyncIterator]();
    const ib = b.receive()[Symbol.asyncIterator]();
    const [na, nb] = [ia.next(), ib.next()];
    await other.send(payload, { transport: "udp", hostname: config.groupAddress!, port: config.port });
    assert.deepEqual((await na).value, payload);
    assert.deepEqual((await nb).value, payload);
  } finally {
    a.close();
    b.close();
    other.close();
  }
});

Deno.test("NetChannel.open errors: one-line JooldError(NET_SETUP) naming the file and the cause", async () => {
  // Port taken without reuseaddr.
  const config = v4Config("233.252.0.27", 46427, { reuseaddr: 0 });
  const first = await NetChannel.open(config, deps());
  try {
    const error = await NetChannel.open(config, deps()).then(() => undefined, (e) => e);
    assert.ok(error instanceof JooldError && error.exitCode === EXIT.NET_SETUP, String(error));
    assert.match(
      error.message,
      /^netsocket\.json: cannot bind the multicast socket to 233\.252\.0\.27:46427: /,
    );
    assert.ok(!error.message.includes("\n"));
  } finally {
    first.close();
  }
  // An out interface address that is not local.
  const badOut = v4Config("233.252.0.28", 46428, {
    outInterface: { text: "198.51.100.28", address: "198.51.100.28" },
  });
  const error = await NetChannel.open(badOut, deps()).then(() => undefined, (e) => e);
  assert.ok(error instanceof JooldError && error.exitCode === EXIT.NET_SETUP, String(error));
  assert.match(
    error.message,
    /^netsocket\.json: setsockopt\(IP_MULTICAST_IF, 198\.51\.100\.28\) on descriptor \d+ failed: Cannot assign requested address$/,
  );
  assert.ok(error.cause instanceof SocketOptionError, "the ffi error is the cause");
  // The socket was closed: the address can be bound again without reuse.
  const again = await NetChannel.open(v4Config("233.252.0.28", 46428, { reuseaddr: 0 }), deps());
  again.close();
  // A join on an address that is no interface's.
  const badIn = v4Config("233.252.0.29", 46429, {
    inInterface: { text: "198.51.100.29", address: "198.51.100.29" },
  });
  const joinError = await NetChannel.open(badIn, deps()).then(() => undefined, (e) => e);
  assert.ok(joinError instanceof JooldError && joinError.exitCode === EXIT.NET_SETUP, String(joinError));
  assert.match(
    joinError.message,
    /^netsocket\.json: cannot join multicast group 233\.252\.0\.29 on 198\.51\.100\.29: /,
  );
});
