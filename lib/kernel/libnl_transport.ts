/**
 * The production kernel transport: a Generic Netlink socket (through libnl) subscribed to Jool's "joold"
 * multicast group.
 * @module
 */
import { EXIT, JooldError } from "../errors.ts";
import { LibraryLoadError } from "../../ffi/libc.ts";
import { FamilyAbsentError, NetlinkSocket, NetlinkSocketError } from "../../ffi/netlink_socket.ts";
import type { KernelTransport } from "./transport.ts";

/** Jool's Generic Netlink family and multicast group (spec §1.1). */
export const JOOL_FAMILY = "Jool";
export const JOOLD_GROUP = "joold";

/**
 * Opens the socket, resolves "Jool" and joins "joold". Throws JooldError: EXIT.JOOL_ABSENT when the family is
 * not registered (module not loaded), EXIT.LIBRARY when libnl is missing, EXIT.RUNTIME otherwise.
 */
export function openLibnlTransport(): KernelTransport {
  let socket: NetlinkSocket;
  try {
    socket = NetlinkSocket.open({ family: JOOL_FAMILY, group: JOOLD_GROUP });
  } catch (cause) {
    if (cause instanceof FamilyAbsentError) {
      throw new JooldError(
        EXIT.JOOL_ABSENT,
        cause.group === undefined
          ? "Jool's Generic Netlink family is absent: load the jool module (modprobe jool)"
          : `Jool's Generic Netlink family has no "${JOOLD_GROUP}" multicast group; is the jool module a 4.1.x release?`,
        { cause },
      );
    }
    if (cause instanceof LibraryLoadError) throw new JooldError(EXIT.LIBRARY, cause.message, { cause });
    if (cause instanceof NetlinkSocketError) {
      throw new JooldError(EXIT.RUNTIME, `cannot open the netlink socket to Jool: ${cause.message}`, {
        cause,
      });
    }
    throw cause;
  }
  return {
    familyId: socket.familyId,
    localPort: socket.localPort,
    send: (message) => socket.send(message),
    receive: (onRead) => socket.receive(onRead),
    hasPending: () => socket.hasPending(),
    close: () => socket.close(),
  };
}
