/**
 * libnl symbol tables (`libnl-3.so.200`, `libnl-genl-3.so.200`): joold uses libnl only to open the Generic
 * Netlink socket and resolve the "Jool" family and its "joold" group; every message is built by the pure codecs
 * in `lib/jool/` and sent as raw bytes.
 *
 * Only files in `ffi/` use these tables; `ffi/netlink_socket.ts` wraps them.
 * @module
 */
import { LibraryLoadError } from "./libc.ts";

/** Symbols of libnl-3 (Debian package libnl-3-200). */
export const LIBNL_SYMBOLS = {
  /** struct nl_sock *nl_socket_alloc(void) */
  nl_socket_alloc: { parameters: [], result: "pointer" },
  /** void nl_socket_free(struct nl_sock *sk) — also closes the descriptor. */
  nl_socket_free: { parameters: ["pointer"], result: "void" },
  /** void nl_socket_disable_seq_check(struct nl_sock *sk) */
  nl_socket_disable_seq_check: { parameters: ["pointer"], result: "void" },
  /** void nl_socket_disable_auto_ack(struct nl_sock *sk) */
  nl_socket_disable_auto_ack: { parameters: ["pointer"], result: "void" },
  /** int nl_socket_set_buffer_size(struct nl_sock *sk, int rxbuf, int txbuf) — 0 or -NLE_*. */
  nl_socket_set_buffer_size: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  /** int nl_socket_add_membership(struct nl_sock *sk, int group) — 0 or -NLE_*. */
  nl_socket_add_membership: { parameters: ["pointer", "i32"], result: "i32" },
  /** int nl_socket_get_fd(const struct nl_sock *sk) — -1 before connect. */
  nl_socket_get_fd: { parameters: ["pointer"], result: "i32" },
  /** uint32_t nl_socket_get_local_port(const struct nl_sock *sk) */
  nl_socket_get_local_port: { parameters: ["pointer"], result: "u32" },
  /** int nl_sendto(struct nl_sock *sk, void *buf, size_t size) — bytes sent or -NLE_*; to the kernel. */
  nl_sendto: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  /** const char *nl_geterror(int error) — error may be negative. */
  nl_geterror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Symbols of libnl-genl-3 (Debian package libnl-genl-3-200). */
export const LIBNL_GENL_SYMBOLS = {
  /** int genl_connect(struct nl_sock *sk) — 0 or -NLE_*. */
  genl_connect: { parameters: ["pointer"], result: "i32" },
  /** int genl_ctrl_resolve(struct nl_sock *sk, const char *name) — family id or -NLE_* (NUL-terminated name). */
  genl_ctrl_resolve: { parameters: ["pointer", "buffer"], result: "i32" },
  /**
   * int genl_ctrl_resolve_grp(struct nl_sock *sk, const char *family_name, const char *grp_name)
   * — group id or -NLE_* (both NUL-terminated).
   */
  genl_ctrl_resolve_grp: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** libnl-3 symbols. */
export type Libnl = Deno.DynamicLibrary<typeof LIBNL_SYMBOLS>["symbols"];
/** libnl-genl-3 symbols. */
export type LibnlGenl = Deno.DynamicLibrary<typeof LIBNL_GENL_SYMBOLS>["symbols"];

let libnl: Libnl | undefined;
let libnlGenl: LibnlGenl | undefined;

/** Opens libnl-3 once. Throws {@link LibraryLoadError} naming libnl-3-200. */
export function loadLibnl(): Libnl {
  if (libnl) return libnl;
  try {
    libnl = Deno.dlopen("libnl-3.so.200", LIBNL_SYMBOLS).symbols;
  } catch (cause) {
    throw new LibraryLoadError("libnl-3.so.200", "libnl-3-200", { cause });
  }
  return libnl;
}

/** Opens libnl-genl-3 once. Throws {@link LibraryLoadError} naming libnl-genl-3-200. */
export function loadLibnlGenl(): LibnlGenl {
  if (libnlGenl) return libnlGenl;
  try {
    libnlGenl = Deno.dlopen("libnl-genl-3.so.200", LIBNL_GENL_SYMBOLS).symbols;
  } catch (cause) {
    throw new LibraryLoadError("libnl-genl-3.so.200", "libnl-genl-3-200", { cause });
  }
  return libnlGenl;
}

/** libnl's text for an error code (negative or positive NLE_*). */
export function nlErrorText(code: number): string {
  const p = loadLibnl().nl_geterror(code);
  return p === null ? `libnl error ${code}` : Deno.UnsafePointerView.getCString(p);
}
