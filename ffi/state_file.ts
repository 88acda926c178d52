/**
 * Replaces a small state file (the reliable mode's track file) through libc: written to `PATH.tmp`, then
 * renamed over `PATH`, so a reader sees the old content or the new one, never half of it.
 *
 * Why not Deno.writeTextFile: joold runs without --allow-write (README "Install and run"), and the one file it
 * writes is named by the operator in netsocket.json; --allow-ffi, which joold needs anyway, is full trust, and
 * this module writes nothing but the file its caller names.
 * @module
 */
import { cString, errnoText, lastErrno, loadLibc } from "./libc.ts";

/** A write or rename of a state file that failed. */
export class StateFileError extends Error {
  /**
   * A failed replacement of a state file.
   * @param path the file
   * @param errno the C errno
   */
  constructor(readonly path: string, readonly errno: number) {
    super(`cannot write ${path}: ${errnoText(errno)}`);
    this.name = "StateFileError";
  }
}

/** Writes `text` to `path` atomically (temporary file + rename). Throws {@link StateFileError}. */
export function replaceStateFile(path: string, text: string): void {
  const libc = loadLibc();
  const temporary = `${path}.tmp`;
  const file = libc.fopen(cString(temporary), cString("we"));
  if (file === null) throw new StateFileError(temporary, lastErrno());
  const bytes = new TextEncoder().encode(text);
  const written = Number(libc.fwrite(bytes, 1n, BigInt(bytes.length), file));
  const writeErrno = written === bytes.length ? 0 : lastErrno();
  if (libc.fclose(file) !== 0 && writeErrno === 0) throw new StateFileError(temporary, lastErrno());
  if (writeErrno !== 0) throw new StateFileError(temporary, writeErrno);
  if (libc.rename(cString(temporary), cString(path)) !== 0) throw new StateFileError(path, lastErrno());
}
