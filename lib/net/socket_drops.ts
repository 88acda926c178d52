/**
 * Datagrams the kernel dropped in a UDP socket's receive queue before joold could read them (the `drops`
 * column of /proc/net/udp and /proc/net/udp6, matched by the socket's inode). Deno's UDP API cannot report
 * them, and without this an overflowing receive buffer would lose sessions silently.
 * @module
 */

/** Parses /proc/net/udp{,6} text: the drops of the socket with this inode, or undefined when absent. */
export function dropsFromProcNetUdp(text: string, inode: number): number | undefined {
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (fields.length >= 13 && Number(fields[9]) === inode) return Number(fields[12]);
  }
  return undefined;
}

/** Inode of an open socket descriptor (/proc/self/fd/N → "socket:[INODE]"), or undefined. */
export function socketInode(fd: number): number | undefined {
  const target = readOrUndefined(() => Deno.readLinkSync(`/proc/self/fd/${fd}`));
  const match = target === undefined ? null : /^socket:\[(\d+)\]$/.exec(target);
  return match ? Number(match[1]) : undefined;
}

/** Runs a /proc read; undefined when /proc is absent or not readable (the counter then stays 0). */
function readOrUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    const unreadable = error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.PermissionDenied ||
      error instanceof Deno.errors.NotCapable;
    if (unreadable) return undefined;
    throw error;
  }
}

/**
 * Returns a reader of the socket's kernel drop counter (0 when /proc cannot tell). Reads /proc only when called
 * (stats queries), never on the datagram path.
 */
export function socketDropReader(fd: number, family: 4 | 6): () => number {
  const inode = socketInode(fd);
  const file = family === 6 ? "/proc/net/udp6" : "/proc/net/udp";
  return () => {
    if (inode === undefined) return 0;
    const text = readOrUndefined(() => Deno.readTextFileSync(file));
    return text === undefined ? 0 : dropsFromProcNetUdp(text, inode) ?? 0;
  };
}
