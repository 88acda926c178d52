import assert from "node:assert/strict";
import {
  findSocketDescriptor,
  getIntOption,
  getMulticastInterfaceV4,
  getMulticastInterfaceV6,
  getMulticastLoop,
  getMulticastTtl,
  interfaceMtu,
  setMulticastInterfaceV4,
  setMulticastInterfaceV6,
  setMulticastLoop,
  setMulticastTtl,
  SocketDescriptorError,
  socketDescriptorsBoundTo,
  SocketOptionError,
  SOCKOPT,
} from "../../ffi/socket_options.ts";
import { addressBytes } from "../../lib/net/address.ts";

// Ports are per test so the tests never see each other's sockets.
function listen(hostname: string, port: number, reuseAddress = true): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname, port, reuseAddress });
}

Deno.test("descriptor discovery: the socket Deno bound is found by address and port", () => {
  const conn = listen("233.252.0.11", 46411);
  try {
    const fd = findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.11")!, port: 46411 });
    assert(fd > 2);
    assert.deepEqual(getIntOption(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR), 1);
    // Other port, other address, other family: no match.
    assert.deepEqual(
      socketDescriptorsBoundTo({ family: 4, bytes: addressBytes("233.252.0.11")!, port: 46412 }),
      [],
    );
    assert.deepEqual(
      socketDescriptorsBoundTo({ family: 4, bytes: addressBytes("233.252.0.12")!, port: 46411 }),
      [],
    );
    assert.deepEqual(
      socketDescriptorsBoundTo({ family: 6, bytes: addressBytes("::ffff:233.252.0.11")!, port: 46411 }),
      [],
    );
  } finally {
    conn.close();
  }
});

Deno.test("descriptor discovery: two sockets on one address are told apart by the 'before' set, else refused", () => {
  const first = listen("233.252.0.13", 46413);
  const before = socketDescriptorsBoundTo({ family: 4, bytes: addressBytes("233.252.0.13")!, port: 46413 });
  const second = listen("233.252.0.13", 46413);
  try {
    assert.deepEqual(before.length, 1);
    const fd = findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.13")!, port: 46413 }, before);
    assert(!before.includes(fd));
    const error = thrown(() =>
      findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.13")!, port: 46413 })
    );
    assert(error instanceof SocketDescriptorError && error.found.length === 2);
    assert(/found 2 new UDP sockets bound to IPv4 port 46413/.test(error.message), error.message);
  } finally {
    first.close();
    second.close();
  }
  const gone = thrown(() =>
    findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.13")!, port: 46413 })
  );
  assert(gone instanceof SocketDescriptorError && /cannot find the descriptor/.test(gone.message));
});

Deno.test("descriptor discovery: IPv6 scope id takes part in the match", () => {
  const lo = 1;
  const conn = listen("ff02::db8:64:14%lo", 46414);
  try {
    assert.deepEqual(
      socketDescriptorsBoundTo({ family: 6, bytes: addressBytes("ff02::db8:64:14")!, port: 46414 }),
      [],
    );
    assert.deepEqual(
      socketDescriptorsBoundTo({
        family: 6,
        bytes: addressBytes("ff02::db8:64:14")!,
        port: 46414,
        scopeId: lo,
      }).length,
      1,
    );
  } finally {
    conn.close();
  }
});

Deno.test("IPv4 options: TTL, loop and IP_MULTICAST_IF read back as set", () => {
  const conn = listen("233.252.0.15", 46415);
  try {
    const fd = findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.15")!, port: 46415 });
    assert.deepEqual(getMulticastTtl(fd, 4), 1); // kernel default
    for (const ttl of [0, 3, 255]) {
      setMulticastTtl(fd, 4, ttl);
      assert.deepEqual(getMulticastTtl(fd, 4), ttl);
    }
    setMulticastLoop(fd, 4, true);
    assert.deepEqual(getMulticastLoop(fd, 4), true);
    setMulticastLoop(fd, 4, false);
    assert.deepEqual(getMulticastLoop(fd, 4), false);
    assert.deepEqual(getMulticastInterfaceV4(fd), "0.0.0.0");
    setMulticastInterfaceV4(fd, addressBytes("127.0.0.1")!);
    assert.deepEqual(getMulticastInterfaceV4(fd), "127.0.0.1");
  } finally {
    conn.close();
  }
});

Deno.test("IPv6 options: hops, loop and IPV6_MULTICAST_IF read back as set", () => {
  const conn = listen("ff08::db8:64:16", 46416);
  try {
    const fd = findSocketDescriptor({ family: 6, bytes: addressBytes("ff08::db8:64:16")!, port: 46416 });
    assert.deepEqual(getMulticastTtl(fd, 6), 1);
    setMulticastTtl(fd, 6, 7);
    assert.deepEqual(getMulticastTtl(fd, 6), 7);
    setMulticastLoop(fd, 6, true);
    assert.deepEqual(getMulticastLoop(fd, 6), true);
    assert.deepEqual(getMulticastInterfaceV6(fd), 0);
    setMulticastInterfaceV6(fd, 1);
    assert.deepEqual(getMulticastInterfaceV6(fd), 1);
  } finally {
    conn.close();
  }
});

Deno.test("option errors are one-line SocketOptionErrors naming option, value and errno text", () => {
  const conn = listen("233.252.0.17", 46417);
  try {
    const fd = findSocketDescriptor({ family: 4, bytes: addressBytes("233.252.0.17")!, port: 46417 });
    const notLocal = thrown(() => setMulticastInterfaceV4(fd, addressBytes("198.51.100.17")!));
    assert(notLocal instanceof SocketOptionError && notLocal.errno > 0);
    assert.deepEqual(
      notLocal.message,
      `setsockopt(IP_MULTICAST_IF, 198.51.100.17) on descriptor ${fd} failed: Cannot assign requested address`,
    );
    const badTtl = thrown(() => setMulticastTtl(fd, 4, 256));
    assert(badTtl instanceof SocketOptionError);
    assert.deepEqual(
      badTtl.message,
      `setsockopt(IP_MULTICAST_TTL, 256) on descriptor ${fd} failed: Invalid argument`,
    );
    assert(!badTtl.message.includes("\n"));
  } finally {
    conn.close();
  }
  const v6 = listen("ff08::db8:64:17", 46417);
  try {
    const fd = findSocketDescriptor({ family: 6, bytes: addressBytes("ff08::db8:64:17")!, port: 46417 });
    const noIf = thrown(() => setMulticastInterfaceV6(fd, 0x7fff_fff0));
    assert(noIf instanceof SocketOptionError);
    assert(
      /^setsockopt\(IPV6_MULTICAST_IF, 2147483632\) on descriptor \d+ failed: No such device$/.test(
        noIf.message,
      ),
    );
  } finally {
    v6.close();
  }
});

/** Runs `run`, which must throw, and returns what it threw. */
function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new assert.AssertionError({ message: "expected an exception" });
}

Deno.test("interface MTU: SIOCGIFMTU through the socket, undefined for an interface that is not there", () => {
  const conn = listen("127.0.0.1", 46431);
  try {
    const fd = findSocketDescriptor({ family: 4, bytes: addressBytes("127.0.0.1")!, port: 46431 });
    // What the kernel says of lo in this namespace, read the other way (sysfs of the same namespace here).
    const lo = Number(new TextDecoder().decode(
      new Deno.Command("cat", { args: ["/sys/class/net/lo/mtu"] })
        .outputSync().stdout,
    ));
    assert(lo > 0);
    assert.deepEqual(interfaceMtu(fd, "lo"), lo);
    assert.deepEqual(interfaceMtu(fd, "joold-absent0"), undefined);
    assert.deepEqual(interfaceMtu(fd, "a-name-longer-than-ifnamsiz"), undefined);
    assert.deepEqual(interfaceMtu(fd, ""), undefined);
  } finally {
    conn.close();
  }
});
