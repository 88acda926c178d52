/**
 * `"key file"` and `"second key file"` (docs/protocol.md §10.6): a pre-shared key's file must be a regular
 * file that only its owner can read or write, of at least {@link KEY_MIN_BYTES} bytes (the raw bytes are the key).
 * Read at start and again on SIGHUP; every problem is a one-line {@link ConfigError}.
 * @module
 */
import { errorMessage } from "../errors.ts";
import { ConfigError, showValue } from "./json_file.ts";
import type { KeyFile } from "./types.ts";

/** The shortest key accepted (HMAC-SHA-256's output size). */
export const KEY_MIN_BYTES = 32;

/** Reads and checks the key file `path` named by `field` of the config `file`. */
export async function readKeyFile(file: string, field: string, path: string): Promise<KeyFile> {
  const value = showValue(path);
  const fail = (problem: string, remedy: string, cause?: unknown) =>
    new ConfigError(file, field, problem, value, remedy, cause === undefined ? undefined : { cause });
  const make = `create it with: head -c 32 /dev/urandom > ${path} && chmod 600 ${path}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw fail("no such file", make, error);
    throw fail(`cannot stat it (${errorMessage(error)})`, "check the path and joold's permissions", error);
  }
  if (!info.isFile) throw fail("not a regular file", `name a file; ${make}`);
  const mode = info.mode ?? 0;
  if ((mode & 0o077) !== 0) {
    throw fail(
      `readable or writable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, "0")})`,
      `run: chmod 600 ${path}`,
    );
  }
  let key: Uint8Array;
  try {
    key = await Deno.readFile(path);
  } catch (error) {
    throw fail(`cannot read it (${errorMessage(error)})`, "run joold as the file's owner (or root)", error);
  }
  if (key.length < KEY_MIN_BYTES) {
    throw fail(
      `holds ${key.length} bytes; a key needs at least ${KEY_MIN_BYTES}`,
      `write a new one with: head -c 32 /dev/urandom > ${path}`,
    );
  }
  return { path, key };
}
