/**
 * The production query socket (`openLibnlQuerySocket`, used for the pool4 listing) on this host, for real (no
 * root needed): against nlctrl, a request gets its reply through `receive`, and a `receive` with nothing coming
 * ends at its timeout (the asynchronous poll woken by its timer). Without the Jool module, opening it for "Jool"
 * is EXIT.JOOL_ABSENT.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
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
import { openLibnlQuerySocket } from "../../lib/kernel/libnl_transport.ts";
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

Deno.test("query socket: a request's reply arrives through receive(); silence ends at the timeout", async () => {
  const socket = openLibnlQuerySocket("nlctrl");
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
      seq: 815,
      pid: socket.localPort,
    });
    writeGenlHeader(request, NLMSG_HDRLEN, { cmd: CTRL_CMD_GETFAMILY, version: 1, reserved: 0 });
    request.set(attrs, NLMSG_HDRLEN + GENL_HDRLEN);
    socket.send(request);
    const datagram = await socket.receive(2000);
    assert(datagram, "no reply");
    const [reply] = splitMessages(datagram).messages;
    const header = readNetlinkHeader(reply);
    assertEquals([header.type, header.seq, header.pid], [GENL_ID_CTRL, 815, socket.localPort]);
    const parsed = parseAttributes(reply.subarray(NLMSG_HDRLEN + GENL_HDRLEN));
    assert(parsed.ok);
    assertEquals(
      readU16(parsed.attributes.find((a) => a.type === CTRL_ATTR_FAMILY_ID)!.payload),
      GENL_ID_CTRL,
    );
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
