/**
 * The host's own Generic Netlink controller (nlctrl) as a peer for tests of the real netlink sockets: a
 * CTRL_CMD_GETFAMILY request for "nlctrl" built with our codecs, and the reply's family id. No root needed.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
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

/** nlctrl's fixed family id. */
export const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;

/** A CTRL_CMD_GETFAMILY request for "nlctrl" from netlink port `pid`, with sequence number `seq`. */
export function getFamilyRequest(seq: number, pid: number): Uint8Array {
  const attrs = encodeAttributes([{
    type: CTRL_ATTR_FAMILY_NAME,
    payload: new TextEncoder().encode("nlctrl\0"),
  }]);
  const request = new Uint8Array(NLMSG_HDRLEN + GENL_HDRLEN + attrs.length);
  writeNetlinkHeader(request, { length: request.length, type: GENL_ID_CTRL, flags: NLM_F_REQUEST, seq, pid });
  writeGenlHeader(request, NLMSG_HDRLEN, { cmd: CTRL_CMD_GETFAMILY, version: 1, reserved: 0 });
  request.set(attrs, NLMSG_HDRLEN + GENL_HDRLEN);
  return request;
}

/** Asserts that `datagram` is nlctrl's reply to {@link getFamilyRequest}`(seq, pid)`, naming nlctrl's own id. */
export function assertGetFamilyReply(datagram: Uint8Array, seq: number, pid: number): void {
  const [reply] = splitMessages(datagram).messages;
  const header = readNetlinkHeader(reply);
  assertEquals([header.type, header.seq, header.pid], [GENL_ID_CTRL, seq, pid]);
  const parsed = parseAttributes(reply.subarray(NLMSG_HDRLEN + GENL_HDRLEN));
  assert(parsed.ok);
  const id = parsed.attributes.find((a) => a.type === CTRL_ATTR_FAMILY_ID);
  assert(id, "no family id in the reply");
  assertEquals(readU16(id.payload), GENL_ID_CTRL);
}

/** Whether the Jool module is loaded on this host (tests of its absence are skipped then). */
export function joolLoaded(): boolean {
  try {
    Deno.statSync("/sys/module/jool");
    return true;
  } catch {
    return false; // absent (or unreadable): treat as not loaded
  }
}
