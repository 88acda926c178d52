/**
 * The libnl-backed Generic Netlink socket on this host, for real (no root needed): nlctrl resolves, the Jool
 * family is reported absent when the module is not loaded, a raw request built with our codecs gets its reply
 * through the poll + drain loop, and close() wakes a pending poll.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { FamilyAbsentError, NetlinkSocket } from "../../ffi/netlink_socket.ts";
import {
  encodeAttributes,
  GENL_HDRLEN,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  parseAttributes,
  readNetlinkHeader,
  readU16,
  splitMessages,
  writeGenlHeader,
  writeNetlinkHeader,
} from "../../lib/jool/netlink.ts";
import { openLibnlTransport } from "../../lib/kernel/libnl_transport.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";

const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;

function joolLoaded(): boolean {
  try {
    Deno.statSync("/sys/module/jool");
    return true;
  } catch {
    return false; // absent (or unreadable): treat as not loaded
  }
}

Deno.test("netlink socket: nlctrl resolves to 0x10 and its notify group joins", () => {
  const socket = NetlinkSocket.open({ family: "nlctrl", group: "notify" });
  try {
    assertEquals(socket.familyId, GENL_ID_CTRL);
    assert(socket.groupId > 0, `group ${socket.groupId}`);
    assert(socket.localPort > 0);
    assert(socket.fd > 2);
    assert(socket.receiveBufferBytes >= 65536, `SO_RCVBUF ${socket.receiveBufferBytes}`);
  } finally {
    socket.close();
  }
});

Deno.test({
  name: "netlink socket: the Jool family is absent (NLE_OBJ_NOTFOUND) without the module",
  ignore: joolLoaded(),
  fn() {
    let error: unknown;
    try {
      NetlinkSocket.open({ family: "Jool", group: "joold" }).close();
    } catch (e) {
      error = e;
    }
    assert(error instanceof FamilyAbsentError, String(error));
    assertEquals(error.family, "Jool");
  },
});

Deno.test({
  name: "libnl transport: a missing Jool family is EXIT.JOOL_ABSENT with the modprobe hint",
  ignore: joolLoaded(),
  fn() {
    let error: unknown;
    try {
      openLibnlTransport().close();
    } catch (e) {
      error = e;
    }
    assert(error instanceof JooldError, String(error));
    assertEquals(error.exitCode, EXIT.JOOL_ABSENT);
    assertEquals(
      error.message,
      "Jool's Generic Netlink family is absent: load the jool module (modprobe jool)",
    );
  },
});

Deno.test("netlink socket: a raw CTRL_CMD_GETFAMILY gets its reply; what is already waiting is read without a poll", async () => {
  const socket = NetlinkSocket.open({ family: "nlctrl" });
  try {
    const attrs = encodeAttributes([{
      type: CTRL_ATTR_FAMILY_NAME,
      payload: new TextEncoder().encode("nlctrl\0"),
    }]);
    const request = new Uint8Array(NLMSG_HDRLEN + GENL_HDRLEN + attrs.length);
    writeNetlinkHeader(request, {
      length: request.length,
      type: GENL_ID_CTRL,
      flags: NLM_F_REQUEST,
      seq: 4711,
      pid: socket.localPort,
    });
    writeGenlHeader(request, NLMSG_HDRLEN, { cmd: CTRL_CMD_GETFAMILY, version: 1, reserved: 0 });
    request.set(attrs, NLMSG_HDRLEN + GENL_HDRLEN);
    socket.send(request);
    assert(!socket.hasPending(), "a reply waits, but receive() is not parked in poll: it will drain it");
    const seen: number[] = [];
    const iterator = socket.receive((datagram) => seen.push(datagram.length))[Symbol.asyncIterator]();
    const { value } = await iterator.next();
    assertEquals(seen, [value!.length], "onRead saw the datagram before it was yielded");
    const [reply] = splitMessages(value!).messages;
    const header = readNetlinkHeader(reply);
    assertEquals([header.type, header.seq, header.pid], [GENL_ID_CTRL, 4711, socket.localPort]);
    const parsed = parseAttributes(reply.subarray(NLMSG_HDRLEN + GENL_HDRLEN));
    assert(parsed.ok);
    const id = parsed.attributes.find((a) => a.type === CTRL_ATTR_FAMILY_ID);
    assertEquals(readU16(id!.payload), GENL_ID_CTRL);
    assertEquals(socket.polls, 0, "the reply was waiting: read without a poll");
    // A second reply that arrives while the caller works is read at once too, not after a poll round trip.
    new DataView(request.buffer).setUint32(8, 4712, true);
    socket.send(request);
    const second = await iterator.next();
    assertEquals(readNetlinkHeader(second.value!).seq, 4712);
    assertEquals(socket.polls, 0, "the second reply: no poll either");
    // Nothing waiting: next() runs up to the poll synchronously and parks there.
    const third = iterator.next();
    assertEquals(socket.polls, 1, "nothing waiting: now it polls");
    assert(!socket.hasPending(), "parked, nothing waiting");
    new DataView(request.buffer).setUint32(8, 4713, true);
    socket.send(request);
    assert(socket.hasPending(), "parked in poll with a reply waiting: it needs an event-loop turn");
    assertEquals(readNetlinkHeader((await third).value!).seq, 4713);
    // close() while the next poll is pending ends the iteration.
    const pending = iterator.next();
    socket.close();
    assertEquals((await pending).done, true);
  } finally {
    socket.close();
  }
});
