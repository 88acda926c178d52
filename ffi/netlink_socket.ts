/**
 * A Generic Netlink socket opened through libnl, used as a raw pipe of whole netlink datagrams.
 *
 * libnl opens the socket (auto-ACK and sequence checking off, as upstream joold), resolves the family and the
 * multicast group and joins it. Messages are built and parsed by the pure codecs in `lib/jool/`: this wrapper
 * only opens, sends and releases. Receiving is done on the socket's descriptor by the kernel thread
 * (`ffi/fd_socket.ts`), which blocks in poll/recv on a thread of its own.
 * @module
 */
import { cString, errnoText, loadLibc } from "./libc.ts";
import { loadLibnl, loadLibnlGenl, nlErrorText } from "./libnl.ts";

/** libnl's "Object not found": the family (or group) is not registered. */
export const NLE_OBJ_NOTFOUND = 12;

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;

/** A libnl or libc failure while opening or using the socket. */
export class NetlinkSocketError extends Error {
  /**
   * A failed step.
   * @param step what was being done
   * @param code libnl error code (positive NLE_*) or errno, per `source`
   */
  constructor(
    readonly step: string,
    readonly code: number,
    readonly source: "libnl" | "errno",
    options?: ErrorOptions,
  ) {
    super(`${step}: ${source === "libnl" ? nlErrorText(-code) : errnoText(code)}`, options);
    this.name = "NetlinkSocketError";
  }
}

/** The family (or its group) is not registered with the kernel's nlctrl. */
export class FamilyAbsentError extends Error {
  /**
   * A family, or its group, that nlctrl does not know.
   * @param family the family name
   * @param group the group name, when the family exists but the group does not
   */
  constructor(readonly family: string, readonly group?: string) {
    super(
      group === undefined
        ? `Generic Netlink family "${family}" not found`
        : `multicast group "${group}" of Generic Netlink family "${family}" not found`,
    );
    this.name = "FamilyAbsentError";
  }
}

/** What to open. */
export interface NetlinkSocketOptions {
  /** Generic Netlink family name, e.g. "Jool". */
  readonly family: string;
  /** Multicast group of that family to resolve, e.g. "joold" ({@link NetlinkSocket.joinGroup} joins it). */
  readonly group?: string;
  /** Receive buffer wanted (default 4 MiB; SO_RCVBUFFORCE when privileged, else capped by rmem_max). */
  readonly receiveBufferBytes?: number;
  /** Send buffer (default 256 KiB). */
  readonly sendBufferBytes?: number;
}

/** An open Generic Netlink socket. */
export class NetlinkSocket {
  readonly #sk: Deno.PointerObject;
  #released = false;

  private constructor(
    sk: Deno.PointerObject,
    /** Resolved family id. */
    readonly familyId: number,
    /** Resolved group id (0 when no group was asked). */
    readonly groupId: number,
    /** Our netlink port id. */
    readonly localPort: number,
    /** The socket's descriptor (the kernel thread receives on it). */
    readonly fd: number,
    /** SO_RCVBUF as the kernel reports it (twice the requested value, capped). */
    readonly receiveBufferBytes: number,
  ) {
    this.#sk = sk;
  }

  /**
   * Opens, connects and resolves the family and the group (without joining it yet). Throws FamilyAbsentError when the family or group is not registered,
   * NetlinkSocketError for other failures, LibraryLoadError when libnl is missing.
   */
  static open(options: NetlinkSocketOptions): NetlinkSocket {
    const nl = loadLibnl();
    const genl = loadLibnlGenl();
    const libc = loadLibc();
    const sk = nl.nl_socket_alloc();
    if (sk === null) throw new NetlinkSocketError("nl_socket_alloc", 12, "errno");
    try {
      nl.nl_socket_disable_seq_check(sk);
      nl.nl_socket_disable_auto_ack(sk);
      check("genl_connect", genl.genl_connect(sk));
      const rcvbuf = options.receiveBufferBytes ?? 4 << 20;
      check(
        "nl_socket_set_buffer_size",
        nl.nl_socket_set_buffer_size(sk, rcvbuf, options.sendBufferBytes ?? 256 << 10),
      );
      const fd = nl.nl_socket_get_fd(sk);
      // Beyond rmem_max only with CAP_NET_ADMIN; without it the capped SO_RCVBUF above stays.
      const want = new Int32Array([rcvbuf]);
      libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, new Uint8Array(want.buffer), 4);
      const familyId = genl.genl_ctrl_resolve(sk, cString(options.family));
      if (familyId === -NLE_OBJ_NOTFOUND) throw new FamilyAbsentError(options.family);
      check(`resolving Generic Netlink family "${options.family}"`, familyId);
      let groupId = 0;
      if (options.group !== undefined) {
        groupId = genl.genl_ctrl_resolve_grp(sk, cString(options.family), cString(options.group));
        if (groupId === -NLE_OBJ_NOTFOUND) throw new FamilyAbsentError(options.family, options.group);
        check(`resolving multicast group "${options.group}"`, groupId);
      }
      return new NetlinkSocket(sk, familyId, groupId, nl.nl_socket_get_local_port(sk), fd, readRcvbuf(fd));
    } catch (error) {
      nl.nl_socket_free(sk);
      throw error;
    }
  }

  /**
   * Joins the multicast group resolved at open: from now on the kernel's multicasts queue up in this socket, so
   * join once something receives. Throws NetlinkSocketError.
   */
  joinGroup(): void {
    if (this.groupId === 0) return;
    check("joining the multicast group", loadLibnl().nl_socket_add_membership(this.#sk, this.groupId));
  }

  /** Sends one complete netlink message to the kernel. Throws NetlinkSocketError. */
  send(message: Uint8Array): void {
    if (this.#released) throw new NetlinkSocketError("send", 9, "errno"); // EBADF
    const n = loadLibnl().nl_sendto(this.#sk, message as Uint8Array<ArrayBuffer>, BigInt(message.length));
    if (n < 0) throw new NetlinkSocketError("nl_sendto", -n, "libnl");
  }

  /**
   * Closes the socket. Idempotent. Call it only once nothing waits on {@link fd} any more (the kernel thread has
   * stopped): a descriptor closed under a blocked poll is not woken, and its number may be reused.
   */
  close(): void {
    if (this.#released) return;
    this.#released = true;
    loadLibnl().nl_socket_free(this.#sk);
  }
}

function check(step: string, result: number): void {
  if (result < 0) throw new NetlinkSocketError(step, -result, "libnl");
}

function readRcvbuf(fd: number): number {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const ok = loadLibc().getsockopt(
    fd,
    SOL_SOCKET,
    SO_RCVBUF,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return ok === 0 ? value[0] : 0;
}
