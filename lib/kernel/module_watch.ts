/**
 * Notices the Jool modules going away under a running daemon. Jool's Generic Netlink family (and its "joold"
 * multicast group) belongs to the jool_common module: unloading it unregisters the family and drops every
 * socket's membership of the group; loading it again registers a new family (a new id, a new group) that the
 * old socket knows nothing of. The daemon would go on running deaf: no kernel batch ever reaches it again, and
 * its JOOLD_ADDs go to a family id that no longer exists. So the daemon ends, with EXIT.JOOL_ABSENT, and its
 * service manager starts it afresh (scripts/systemd/joold@.service: Restart=on-failure; a start while the
 * module is still absent ends with the same status and is retried).
 *
 * How: every {@link MODULE_POLL_MS} the inode numbers of /sys/module/jool_common and /sys/module/jool, which
 * sysfs numbers afresh for every load, are compared with those seen at start-up. One stat(2) per path per poll.
 * A path absent at start-up is not watched (Jool built into the kernel, or an unusual layout).
 * @module
 */

/** The module directories watched: the family's owner, and the NAT64 module whose version the daemon read. */
export const WATCHED_MODULE_PATHS = ["/sys/module/jool_common", "/sys/module/jool"] as const;

/** How often the watch looks (ms): the longest a daemon runs deaf after a module unload. */
export const MODULE_POLL_MS = 1000;

/** The inode of a path: a number, undefined when absent, null when it cannot be known (no stat in libc). */
export type InodeReader = (path: string) => bigint | undefined | null;

/**
 * What changed between two readings of the watched paths, or undefined when nothing did. `before` holds only the
 * paths that were present at start-up. Pure.
 */
export function moduleChange(
  before: ReadonlyMap<string, bigint>,
  now: (path: string) => bigint | undefined | null,
): string | undefined {
  for (const [path, inode] of before) {
    const current = now(path);
    if (current === null) continue;
    if (current === undefined) return `${path} is gone (the module was unloaded)`;
    if (current !== inode) return `${path} is a new one (the module was unloaded and loaded again)`;
  }
  return undefined;
}

/** A running watch; {@link stop} ends it. */
export interface ModuleWatch {
  /** Stops polling. Idempotent. */
  stop(): void;
}

/**
 * Starts watching: `onGone(why)` is called once, at the first change, and polling stops. A read that throws
 * (anything but "absent") stops the watch too, reported to `options.onError`. Returns undefined (no watch)
 * when none of `paths` can be watched.
 */
export function watchModules(
  readInode: InodeReader,
  onGone: (why: string) => void,
  options: { paths?: readonly string[]; intervalMs?: number; onError?: (error: unknown) => void } = {},
): ModuleWatch | undefined {
  const before = new Map<string, bigint>();
  for (const path of options.paths ?? WATCHED_MODULE_PATHS) {
    const inode = readInode(path);
    if (typeof inode === "bigint") before.set(path, inode);
  }
  if (before.size === 0) return undefined;
  const timer = setInterval(() => {
    let why;
    try {
      why = moduleChange(before, readInode);
    } catch (error) {
      clearInterval(timer);
      options.onError?.(error);
      return;
    }
    if (why === undefined) return;
    clearInterval(timer);
    onGone(why);
  }, options.intervalMs ?? MODULE_POLL_MS);
  Deno.unrefTimer(timer);
  return { stop: () => clearInterval(timer) };
}
