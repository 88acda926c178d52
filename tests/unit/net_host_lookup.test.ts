import assert from "node:assert/strict";
import { decodeSockaddr, interfaceName } from "../../ffi/host.ts";
import { addressText, ipv4Bytes, ipv6Bytes } from "../../lib/net/address.ts";
import { LibcHostLookup } from "../../lib/net/libc_host_lookup.ts";

const lookup = new LibcHostLookup();

Deno.test("address text: IPv4 and IPv6 literals round-trip in canonical form", () => {
  assert.deepEqual(ipv4Bytes("192.0.2.1"), new Uint8Array([192, 0, 2, 1]));
  for (const bad of ["192.0.2", "192.0.2.256", "1.2.3.4.5", "a.b.c.d", ""]) {
    assert.deepEqual(ipv4Bytes(bad), undefined);
  }
  const cases: [string, string][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["ff08::db8:64:64", "ff08::db8:64:64"],
    ["FF08:0:0:0:0:0:DB8:64", "ff08::db8:64"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["ff02::db8:64", "ff02::db8:64"],
  ];
  for (const [text, canonical] of cases) assert.deepEqual(addressText(ipv6Bytes(text)!), canonical, text);
  for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1", ":::"]) {
    assert.deepEqual(ipv6Bytes(bad), undefined, bad);
  }
});

Deno.test("sockaddr decoding: family host order, port big-endian, scope id", () => {
  const v4 = new Uint8Array([2, 0, 0x19, 0x40, 233, 252, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(addressText(decodeSockaddr(new DataView(v4.buffer))!.bytes), "233.252.0.64");
  assert.deepEqual(decodeSockaddr(new DataView(v4.buffer))?.port, 6464);
  const v6 = new Uint8Array(28);
  const view = new DataView(v6.buffer);
  view.setUint16(0, 10, true);
  view.setUint16(2, 6464, false);
  v6.set(ipv6Bytes("ff02::db8:64")!, 8);
  view.setUint32(24, 7, true);
  const decoded = decodeSockaddr(view)!;
  assert.deepEqual([decoded.family, addressText(decoded.bytes), decoded.port, decoded.scopeId], [
    6,
    "ff02::db8:64",
    6464,
    7,
  ]);
  assert.deepEqual(decodeSockaddr(new DataView(new Uint8Array(16).buffer)), undefined); // AF_UNSPEC
});

Deno.test("interfaceIndex: lo exists, unknown and impossible names do not", () => {
  const lo = lookup.interfaceIndex("lo");
  assert(lo !== undefined && lo > 0);
  assert.deepEqual(interfaceName(lo!), "lo");
  assert.deepEqual(lookup.interfaceIndex("joold-nosuch0"), undefined);
  assert.deepEqual(lookup.interfaceIndex(""), undefined);
  assert.deepEqual(lookup.interfaceIndex("a-name-longer-than-15"), undefined);
});

Deno.test("interfaceAddresses: getifaddrs lists the loopback addresses", () => {
  const all = lookup.interfaceAddresses();
  assert(
    all.some((a) => a.name === "lo" && a.family === 4 && a.address === "127.0.0.1"),
    JSON.stringify(all),
  );
  for (const a of all) {
    assert(a.family === 4 ? ipv4Bytes(a.address) : ipv6Bytes(a.address), a.address);
  }
});

Deno.test("resolveHost: literals, localhost, and a name that does not resolve", async () => {
  assert.deepEqual(await lookup.resolveHost("233.252.0.64"), ["233.252.0.64"]);
  assert.deepEqual(await lookup.resolveHost("ff08::db8:64:64"), ["ff08::db8:64:64"]);
  assert((await lookup.resolveHost("localhost")).includes("127.0.0.1"));
  assert.deepEqual(await lookup.resolveHost("joold-test.invalid"), []);
});

Deno.test("servicePort: numbers, /etc/services names, unknown names", () => {
  assert.deepEqual(lookup.servicePort("6464"), 6464);
  assert.deepEqual(lookup.servicePort("domain"), 53);
  assert.deepEqual(lookup.servicePort("joold-no-such-service"), undefined);
  assert.deepEqual(lookup.servicePort(""), undefined);
});
