/**
 * ACK on arrival (lib/jool/ack_check.ts): every datagram the fast check accepts must be one the full path
 * (parseKernelMessage + the channel's rules) would ACK too; everything else must be left to the full path.
 */
import { fullPathAcks } from "../fuzz/targets.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { ackableBatchVersion, instanceKey } from "../../lib/jool/ack_check.ts";
import { packVersion } from "../../lib/jool/header.ts";
import { DOUBLE_FAMILY_ID } from "../helpers/kernel_double.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";
import { errorReply, kernelMessage, multicastBatch, sessionBatch } from "../helpers/kernel_messages.ts";

const FAMILY = DOUBLE_FAMILY_ID;
const key = instanceKey("default");

Deno.test("ack check: the kernel's plain multicasts are ACKed on arrival, with their own version", () => {
  const cases: [string, Uint8Array, number[]][] = [
    ["format C batch, 4.1.13", multicastBatch(sessionBatch(1, 36, "C")), [4, 1, 13, 0]],
    ["format A batch, 4.1.9", multicastBatch(sessionBatch(1, 10, "A"), "default", [4, 1, 9, 0]), [
      4,
      1,
      9,
      0,
    ]],
    ["format B batch, 4.1.12", multicastBatch(sessionBatch(1, 3, "B"), "default", [4, 1, 12, 0]), [
      4,
      1,
      12,
      0,
    ]],
    ["instance name in other case", multicastBatch(sessionBatch(1, 1), "DeFault"), [4, 1, 13, 0]],
    ["empty instance name = default", multicastBatch(sessionBatch(1, 1), ""), [4, 1, 13, 0]],
  ];
  for (const [name, datagram, version] of cases) {
    const [major, minor, revision, dev] = version;
    assertEquals(
      ackableBatchVersion(datagram, FAMILY, key),
      packVersion({ major, minor, revision, dev }),
      name,
    );
    assert(fullPathAcks(datagram, FAMILY, "default"), `${name}: the full path ACKs it too`);
  }
});

Deno.test("ack check: everything else is left to the full path", () => {
  const batch = multicastBatch(sessionBatch(1, 2));
  const truncated = batch.slice(0, batch.length - 8);
  const padded = concatBytes([batch, new Uint8Array(4)]);
  const cases: [string, Uint8Array, string][] = [
    ["another instance", multicastBatch(sessionBatch(1, 1), "nat64-b"), "default"],
    ["a prefix of the instance", multicastBatch(sessionBatch(1, 1), "defaul"), "default"],
    ["a longer name", multicastBatch(sessionBatch(1, 1), "default2"), "default"],
    ["our batch, other instance configured", batch, "other"],
    ["error reply", errorReply(3, "no such instance", 0), "default"],
    ["the 4.2 release candidate", multicastBatch(sessionBatch(1, 1), "default", [4, 1, 255, 0]), "default"],
    ["Jool 4.2", multicastBatch(sessionBatch(1, 1), "default", [4, 2, 0, 0]), "default"],
    ["Jool 3.5", multicastBatch(sessionBatch(1, 1), "default", [3, 5, 0, 0]), "default"],
    [
      "a reply to us (pid ≠ 0)",
      kernelMessage({ pid: 4242, seq: 9 }, [{ type: 7, payload: sessionBatch(1, 1) }]),
      "default",
    ],
    ["no session container", kernelMessage({}, [{ type: 3, payload: new Uint8Array(4) }]), "default"],
    ["no attribute at all", kernelMessage({}, []), "default"],
    ["truncated", truncated, "default"],
    ["two messages in one datagram", concatBytes([batch, batch]), "default"],
    ["trailing bytes past the alignment", padded, "default"],
    [
      "another family",
      kernelMessage({ familyId: FAMILY + 1 }, [{ type: 7, payload: sessionBatch(1, 1) }]),
      "default",
    ],
    ["empty", new Uint8Array(0), "default"],
  ];
  for (const [name, datagram, instance] of cases) {
    assertEquals(ackableBatchVersion(datagram, FAMILY, instanceKey(instance)), 0, name);
  }
  // Not ACKing on arrival must never lose an ACK the full path owes: those it still ACKs (unusable messages of
  // our instance) are ACKed there.
  assert(fullPathAcks(truncated, FAMILY, "default"));
  assert(!fullPathAcks(errorReply(3, "x", 0), FAMILY, "default"));
});

Deno.test("ack check: random mutations of a batch are never ACKed on arrival unless the full path ACKs them", () => {
  const base = multicastBatch(sessionBatch(1, 3));
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  let fast = 0;
  for (let i = 0; i < 20_000; i++) {
    const datagram = base.slice();
    for (let k = 0; k < 1 + Math.floor(random() * 3); k++) {
      datagram[Math.floor(random() * 64)] = Math.floor(random() * 256); // headers and first attribute
    }
    if (ackableBatchVersion(datagram, FAMILY, key) !== 0) {
      fast++;
      assert(fullPathAcks(datagram, FAMILY, "default"), `mutation ${i} ACKed on arrival only`);
    }
  }
  assert(fast > 1000, `only ${fast} mutations stayed ACKable: the test would not see a bad check`);
});
