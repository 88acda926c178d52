/**
 * Datagrams the kernel dropped in a UDP socket's receive queue before joold could read them (the `drops`
 * column of /proc/net/udp and /proc/net/udp6, matched by the socket's inode). Deno's UDP API cannot report
 * them, and without this an overflowing receive buffer would lose sessions silently.
 * @module
 */
import { readKernelFile, readKernelLink } from "../../ffi/kernel_files.ts";

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
  // /proc goes through libc: Deno's own file API wants --allow-all for it (ffi/kernel_files.ts).
  const target = readKernelLink(`/proc/self/fd/${fd}`);
  const match = target === undefined ? null : /^socket:\[(\d+)\]$/.exec(target);
  return match ? Number(match[1]) : undefined;
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
    const text = readKernelFile(file);
    return text === undefined ? 0 : dropsFromProcNetUdp(text, inode) ?? 0;
  };
}
