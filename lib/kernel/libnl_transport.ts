/**
 * The production kernel transport: a Generic Netlink socket (through libnl) subscribed to Jool's "joold"
 * multicast group, received on by the kernel thread.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "../errors.ts";
import { LibraryLoadError } from "../../ffi/libc.ts";
import { FamilyAbsentError, NetlinkSocket, NetlinkSocketError } from "../../ffi/netlink_socket.ts";
import { KernelThreadError, startKernelThread } from "./thread_transport.ts";
import type { KernelAccess, KernelQuerySocket, KernelTransport } from "./transport.ts";
import { closeWakePipe, FdSocket, openWakePipe, wake } from "../../ffi/fd_socket.ts";
import { packVersion } from "../jool/header.ts";
import { readLoadedJoolVersion } from "./version.ts";
import { watchModules } from "./module_watch.ts";
import { inodeOf } from "../../ffi/kernel_files.ts";
import type { Logger } from "../logger.ts";

/** Jool's Generic Netlink family and multicast group (docs/protocol.md §1). */
export const JOOL_FAMILY = "Jool";
/** The multicast group Jool sends its session batches to. */
export const JOOLD_GROUP = "joold";

/** Options of {@link openLibnlTransport}. */
export interface LibnlTransportOptions {
  /** The configured instance. */
  readonly instance: string;
  /** Packed version of the local kernel when known (0 otherwise). */
  readonly version: number;
  /** The module the kernel thread runs (`lib/kernel/thread_module.ts`). */
  readonly threadModule: string | URL;
  /** Where start-up facts are reported. */
  readonly log?: Logger;
}

/**
 * Opens the socket, resolves "Jool", starts the kernel thread on it, then joins "joold" (so no batch waits for
 * a thread still starting). Throws JooldError: EXIT.JOOL_ABSENT when the family is not registered (module not
 * loaded), EXIT.LIBRARY when libnl is missing, EXIT.RUNTIME otherwise.
 */
export async function openLibnlTransport(options: LibnlTransportOptions): Promise<KernelTransport> {
  let socket: NetlinkSocket;
  try {
    socket = NetlinkSocket.open({ family: JOOL_FAMILY, group: JOOLD_GROUP });
  } catch (cause) {
    throw translate(cause);
  }
  let transport: KernelTransport;
  try {
    transport = await startKernelThread({ ...options, socket });
  } catch (cause) {
    socket.close();
    if (cause instanceof KernelThreadError) {
      throw new JooldError(EXIT.RUNTIME, `cannot start the kernel thread: ${cause.message}`, { cause });
    }
    throw translate(cause);
  }
  try {
    socket.joinGroup();
  } catch (cause) {
    await transport.close();
    throw translate(cause);
  }
  return transport;
}

/** The production {@link KernelAccess}: /sys/module/jool/version, libnl, the kernel thread, the module watch. */
export function libnlKernel(threadModule: string | URL): KernelAccess {
  return {
    readVersion: readLoadedJoolVersion,
    open: (instance, version, log) =>
      openLibnlTransport({ instance, version: version ? packVersion(version) : 0, threadModule, log }),
    watchGone: (onGone, log) => {
      const watch = watchModules(inodeOf, onGone, {
        onError: (error) =>
          log.warn(`stopped watching the Jool module (an unload will go unnoticed): ${errorMessage(error)}`),
      });
      return watch && (() => watch.stop());
    },
    openQuerySocket: () => openLibnlQuerySocket(),
  };
}

/**
 * A second Generic Netlink socket to "Jool", for request and reply (the pool4 listing): it joins no group, so
 * only replies arrive on it, and the kernel thread's socket never sees them. The kernel handles a Generic
 * Netlink request inside the send call, so its reply is usually waiting by the time `receive` looks; otherwise
 * the wait runs in poll() on a runtime thread, leaving the event loop free. Throws JooldError like
 * {@link openLibnlTransport}. `family` is "Jool" but for tests (any family answers request/reply alike).
 */
export function openLibnlQuerySocket(family: string = JOOL_FAMILY): KernelQuerySocket {
  let socket: NetlinkSocket;
  try {
    socket = NetlinkSocket.open({
      family,
      receiveBufferBytes: 256 << 10,
      sendBufferBytes: 64 << 10,
    });
  } catch (cause) {
    throw translate(cause);
  }
  // No wake pipe for the non-blocking reads: poll() ignores a negative descriptor.
  const reader = new FdSocket(socket.fd, -1);
  return {
    familyId: socket.familyId,
    localPort: socket.localPort,
    send: (message) => socket.send(message),
    async receive(timeoutMs) {
      while (true) {
        const read = reader.receive();
        if (read instanceof Uint8Array) return read;
        if (read === "overrun") continue; // replies were lost; the caller's wait for its own goes on
        const pipe = openWakePipe();
        const timer = setTimeout(() => wake(pipe), timeoutMs);
        try {
          if (await new FdSocket(socket.fd, pipe.readFd, 0).waitAsync() === "woken") return undefined;
        } finally {
          clearTimeout(timer);
          closeWakePipe(pipe);
        }
      }
    },
    close: () => socket.close(),
  };
}

function translate(cause: unknown): unknown {
  if (cause instanceof FamilyAbsentError) {
    return new JooldError(
      EXIT.JOOL_ABSENT,
      cause.group === undefined
        ? "Jool's Generic Netlink family is absent: load the jool module (modprobe jool)"
        : `Jool's Generic Netlink family has no "${JOOLD_GROUP}" multicast group; is the jool module a 4.1.x release?`,
      { cause },
    );
  }
  if (cause instanceof LibraryLoadError) return new JooldError(EXIT.LIBRARY, cause.message, { cause });
  if (cause instanceof NetlinkSocketError) {
    return new JooldError(EXIT.RUNTIME, `cannot open the netlink socket to Jool: ${cause.message}`, {
      cause,
    });
  }
  return cause;
}
