/**
 * The production query socket (`openLibnlQuerySocket`, used for the pool4 listing) on this host, for real (no
 * root needed): against nlctrl, a request gets its reply through `receive`, and a `receive` with nothing coming
 * ends at its timeout (the asynchronous poll woken by its timer). Without the Jool module, opening it for "Jool"
 * is EXIT.JOOL_ABSENT.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { assertGetFamilyReply, getFamilyRequest, joolLoaded } from "../helpers/nlctrl.ts";
import { openLibnlQuerySocket } from "../../lib/kernel/libnl_transport.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";

Deno.test("query socket: a request's reply arrives through receive(); silence ends at the timeout", async () => {
  const socket = openLibnlQuerySocket("nlctrl");
  try {
    socket.send(getFamilyRequest(815, socket.localPort));
    const datagram = await socket.receive(2000);
    assert(datagram, "no reply");
    assertGetFamilyReply(datagram, 815, socket.localPort);
    // Nothing else is coming: the wait ends at its timeout with undefined.
    assertEquals(await socket.receive(50), undefined);
  } finally {
    socket.close();
  }
});

Deno.test({
  name: "query socket: a missing Jool family is EXIT.JOOL_ABSENT",
  ignore: joolLoaded(),
  fn() {
    let error: unknown;
    try {
      openLibnlQuerySocket().close();
    } catch (e) {
      error = e;
    }
    assert(error instanceof JooldError, String(error));
    assertEquals(error.exitCode, EXIT.JOOL_ABSENT);
  },
});
