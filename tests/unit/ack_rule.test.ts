/** The ACK rule (lib/kernel/ack_rule.ts), case by case, and its gate and ACK writer. */
import { assert, assertEquals } from "../helpers/assert.ts";
import { AckGate, ackOnArrival, AckWriter, shouldAck } from "../../lib/kernel/ack_rule.ts";
import { instanceKey } from "../../lib/jool/ack_check.ts";
import { parseKernelMessage } from "../../lib/jool/messages.ts";
import { readNetlinkHeader } from "../../lib/jool/netlink.ts";
import { DOUBLE_FAMILY_ID } from "../helpers/kernel_double.ts";
import { errorReply, kernelMessage, multicastBatch, sessionEntry } from "../helpers/kernel_messages.ts";

const parse = (bytes: Uint8Array) => parseKernelMessage(bytes, DOUBLE_FAMILY_ID);

Deno.test("ACK rule: which kernel messages are ACKed, on arrival and after parsing", () => {
  const key = instanceKey("default");
  const cases: [string, Uint8Array, boolean, boolean][] = [
    // name, message, ACKed on arrival, ACKed after parsing
    ["plain batch of ours", multicastBatch(sessionEntry(1)), true, true],
    ["batch of ours, 4.1.9", multicastBatch(sessionEntry(1), "default", [4, 1, 9, 0]), true, true],
    ["another instance's batch", multicastBatch(sessionEntry(1), "other"), false, false],
    ["a Jool error reply", errorReply(22, "no", 7), false, false],
    ["another major.minor", multicastBatch(sessionEntry(1), "default", [4, 2, 0, 0]), false, false],
    ["the 4.2 release candidate", multicastBatch(sessionEntry(1), "default", [4, 1, 255, 5]), false, false],
    ["ours, no session container", kernelMessage({}, [{ type: 3, payload: new Uint8Array(4) }]), false, true],
    [
      "another's, no container",
      kernelMessage({ iname: "x" }, [{ type: 3, payload: new Uint8Array(4) }]),
      false,
      false,
    ],
    ["a unicast reply (pid ≠ 0)", kernelMessage({ pid: 9 }, []), false, false],
  ];
  for (const [name, bytes, onArrival, afterParse] of cases) {
    assertEquals(ackOnArrival(bytes, DOUBLE_FAMILY_ID, key) !== 0, onArrival, `${name}: on arrival`);
    assertEquals(shouldAck(parse(bytes), "default"), afterParse, `${name}: after parsing`);
  }
  const truncated = multicastBatch(sessionEntry(1)).subarray(0, 40);
  new DataView(truncated.buffer, truncated.byteOffset).setUint32(0, 40, true);
  assertEquals(ackOnArrival(truncated, DOUBLE_FAMILY_ID, key), 0, "malformed: left to the full path");
  assertEquals(shouldAck(parse(truncated), "default"), true, "malformed message of ours: ACKed");
  assertEquals(shouldAck({ kind: "netlink_error", seq: 1, error: 22 }, "default"), false, "NLMSG_ERROR");
  assertEquals(shouldAck({ kind: "overrun", seq: 0 }, "default"), false, "overrun");
});

Deno.test("ACK gate: hold, whenReleased, release; one shared flag", async () => {
  const gate = new AckGate();
  assertEquals(gate.held, false);
  assertEquals(gate.whenReleased(), undefined);
  gate.hold();
  const other = new AckGate(gate.flags);
  assert(other.held, "the flag is shared (the kernel thread's view)");
  let released = false;
  const wait = gate.whenReleased()!;
  assert(gate.whenReleased() === wait, "one promise for every waiter");
  wait.then(() => released = true);
  await Promise.resolve();
  assertEquals(released, false);
  gate.release();
  await wait;
  assertEquals([released, gate.held, other.held], [true, false, false]);
});

Deno.test("ACK writer: one template per version, the sequence number patched", () => {
  const writer = new AckWriter(DOUBLE_FAMILY_ID, 4242, "nat64", 10);
  const first = writer.ack(0x04010900).slice();
  const second = writer.ack(0x04010900).slice();
  assertEquals([readNetlinkHeader(first).seq, readNetlinkHeader(second).seq], [11, 12]);
  assertEquals(first.subarray(16), second.subarray(16), "the same ACK but for the sequence number");
  const newer = writer.ack(0x04010f00);
  assertEquals([...newer.subarray(24, 28)], [4, 1, 15, 0], "a new version, a new template");
  assertEquals(new TextDecoder().decode(newer.subarray(32, 37)), "nat64");
});
