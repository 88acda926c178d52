/**
 * Reads of the kernel's pseudo-files (/sys, /proc) through libc.
 *
 * Why not Deno.readTextFile: Deno 2.9 refuses /proc and /sys paths ("Requires all access … run again with
 * --allow-all") even when --allow-read allows them, and joold runs with --allow-read, not --allow-all. Without
 * these reads a standby router whose kernel has not multicast yet would not know its session format (and would
 * drop every datagram from its peers), and the socket-drop counter would stay 0 whatever the kernel dropped.
 * --allow-ffi, which joold needs anyway, is full trust: this module reads nothing beyond what its callers ask.
 * @module
 */
import { cString, errnoText, lastErrno, loadLibc } from "./libc.ts";

const ENOENT = 2;
const EACCES = 13;
const ENOTDIR = 20;
const EPERM = 1;
/** errno values that mean "this file is not there for us" rather than a failure worth reporting. */
const ABSENT = new Set([ENOENT, ENOTDIR, EACCES, EPERM]);

/** A read that failed for another reason than the file being absent or forbidden. */
export class KernelFileError extends Error {
  /**
   * A failed read of a kernel file.
   * @param path the file that could not be read
   * @param errno the C errno
   * @param options `cause`, when there is one
   */
  constructor(readonly path: string, readonly errno: number, options?: ErrorOptions) {
    super(`cannot read ${path}: ${errnoText(errno)}`, options);
    this.name = "KernelFileError";
  }
}

/**
 * The whole text of `path` (read to its end: /proc files report size 0), at most `maxBytes`; undefined when the
 * file is absent or not readable (ENOENT, ENOTDIR, EACCES, EPERM). Throws {@link KernelFileError} otherwise.
 */
export function readKernelFile(path: string, maxBytes = 1 << 22): string | undefined {
  const libc = loadLibc();
  const file = libc.fopen(cString(path), cString("re"));
  if (file === null) {
    const errno = lastErrno();
    if (ABSENT.has(errno)) return undefined;
    throw new KernelFileError(path, errno);
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < maxBytes) {
      const chunk = new Uint8Array(Math.min(65536, maxBytes - total));
      const n = Number(libc.fread(chunk, 1n, BigInt(chunk.length), file));
      if (n > 0) {
        chunks.push(chunk.subarray(0, n));
        total += n;
      }
      if (n < chunk.length) {
        if (libc.ferror(file) !== 0) throw new KernelFileError(path, lastErrno());
        break;
      }
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(out);
  } finally {
    libc.fclose(file);
  }
}

/** The target of the symbolic link `path` (e.g. /proc/self/fd/N → "socket:[INODE]"); undefined when absent. */
export function readKernelLink(path: string): string | undefined {
  const buffer = new Uint8Array(4096);
  const n = Number(loadLibc().readlink(cString(path), buffer, BigInt(buffer.length)));
  if (n < 0) {
    const errno = lastErrno();
    if (ABSENT.has(errno)) return undefined;
    throw new KernelFileError(path, errno);
  }
  return new TextDecoder().decode(buffer.subarray(0, n));
}

/** Offset of st_ino in Linux's struct stat (after the 8-byte st_dev: x86_64 and the generic layout of arm64). */
const ST_INO_OFFSET = 8;
/** Room for struct stat (144 bytes on x86_64, 128 on arm64). */
const STAT_SIZE = 256;

/**
 * The inode number of `path` (for /sys directories: which incarnation of a kernel object it is, since sysfs
 * numbers every new node afresh); undefined when absent or not ours to see. Null when this libc has no `stat`
 * symbol (glibc < 2.33). Throws {@link KernelFileError} on other failures.
 */
export function inodeOf(path: string): bigint | undefined | null {
  const stat = loadLibc().stat;
  if (stat === null) return null;
  const buffer = new Uint8Array(STAT_SIZE);
  if (stat(cString(path), buffer) !== 0) {
    const errno = lastErrno();
    if (ABSENT.has(errno)) return undefined;
    throw new KernelFileError(path, errno);
  }
  return new DataView(buffer.buffer).getBigUint64(ST_INO_OFFSET, true);
}
