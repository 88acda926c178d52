/**
 * The host's byte order. C structs and every netlink header and integer attribute are in host order
 * (docs/protocol.md §1), so both the FFI wrappers and the pure netlink codecs in `lib/jool/` read it from here:
 * one definition, and `ffi/` stays free of imports from `lib/`. Pure: no library is loaded.
 * @module
 */

/** Whether this CPU is little-endian: the `littleEndian` argument of DataView calls on host-order fields. */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
