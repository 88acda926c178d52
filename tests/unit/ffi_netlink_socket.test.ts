/**
 * The libnl-backed Generic Netlink socket on this host, for real (no root needed): nlctrl resolves, the Jool
 * family is reported absent when the module is not loaded, a raw request built with our codecs gets its reply
 * through the kernel thread, and close() stops that thread, parked in its blocking poll, before the socket goes.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { FamilyAbsentError, NetlinkSocket } from "../../ffi/netlink_socket.ts";
import { assertGetFamilyReply, GENL_ID_CTRL, getFamilyRequest, joolLoaded } from "../helpers/nlctrl.ts";
import { openLibnlTransport } from "../../lib/kernel/libnl_transport.ts";
import { startKernelThread } from "../../lib/kernel/thread_transport.ts";
import { THREAD_MODULE } from "../helpers/kernel_double.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";

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
  async fn() {
    let error: unknown;
    try {
      await (await openLibnlTransport({ instance: "default", version: 0, threadModule: THREAD_MODULE }))
        .close();
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

Deno.test("netlink socket + kernel thread: a raw CTRL_CMD_GETFAMILY gets its reply; close() stops the parked thread", async () => {
  const socket = NetlinkSocket.open({ family: "nlctrl" });
  const transport = await startKernelThread({
    socket,
    instance: "default",
    version: 0,
    threadModule: THREAD_MODULE,
  });
  try {
    const iterator = transport.receive()[Symbol.asyncIterator]();
    for (const seq of [4711, 4712]) {
      transport.send(getFamilyRequest(seq, socket.localPort));
      const { value } = await iterator.next();
      assertEquals(value!.acked, false, "a reply is no batch: never ACKed");
      assertGetFamilyReply(value!.bytes, seq, socket.localPort);
    }
    // The thread is parked in its blocking poll again; close() wakes it, and the iteration ends.
    const pending = iterator.next();
    await transport.close();
    assertEquals((await pending).done, true);
  } finally {
    await transport.close();
  }
});
