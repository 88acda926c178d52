/**
 * libcrypto (OpenSSL 3, `libcrypto.so.3`): SHA-256 contexts for the authenticated wire's HMAC (`lib/auth/`).
 * Optional: joold uses it when it loads and falls back to `node:crypto` otherwise ({@link loadLibcrypto} says
 * which). Why at all: per datagram, `node:crypto`'s one-shot `hash` costs several µs more than the digest itself,
 * and authentication runs it on every datagram both ways (BENCHMARKS.md "Authentication"); libcrypto's context
 * functions digest in place, with the CPU's SHA instructions, and allocate nothing.
 *
 * Only files in `ffi/` use this table; {@link Sha256Context} wraps it.
 * @module
 */
import { sizeArg } from "./libc.ts";

/** Symbols of libcrypto (Debian package libssl3, libssl3t64 from trixie on). */
export const LIBCRYPTO_SYMBOLS = {
  /** int SHA256_Init(SHA256_CTX *c) — 1 on success. */
  SHA256_Init: { parameters: ["buffer"], result: "i32" },
  /** int SHA256_Update(SHA256_CTX *c, const void *data, size_t len) — 1 on success. */
  SHA256_Update: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  /** int SHA256_Final(unsigned char *md, SHA256_CTX *c) — md has 32 bytes; 1 on success. */
  SHA256_Final: { parameters: ["buffer", "buffer"], result: "i32" },
} as const;

/**
 * Bytes kept for one SHA256_CTX: OpenSSL's is 112 (eight u32 of state, two of length, sixteen of block, two
 * u32 counts) with no pointer inside, so copying its bytes copies the context; the rest is margin.
 */
const SHA256_CTX_BYTES = 128;

/** libcrypto's symbols as {@link loadLibcrypto} returns them. */
export type Libcrypto = Deno.DynamicLibrary<typeof LIBCRYPTO_SYMBOLS>["symbols"];
let libcrypto: Libcrypto | null | undefined;

/** Opens libcrypto once; undefined when it cannot be loaded (no OpenSSL 3, or without these symbols). */
export function loadLibcrypto(): Libcrypto | undefined {
  if (libcrypto === undefined) {
    try {
      libcrypto = Deno.dlopen("libcrypto.so.3", LIBCRYPTO_SYMBOLS).symbols;
    } catch {
      // The caller falls back to node:crypto; which one runs is shown in the stats JSON.
      libcrypto = null;
    }
  }
  return libcrypto ?? undefined;
}

/** A SHA-256 context in a buffer of its own: start, feed, copy (a precomputed prefix), finish into 32 bytes. */
export class Sha256Context {
  readonly #ctx = new Uint8Array(SHA256_CTX_BYTES);

  /** A fresh context (nothing digested yet). */
  constructor(private readonly lib: Libcrypto) {
    check(lib.SHA256_Init(this.#ctx), "SHA256_Init");
  }

  /** Digests `data`. */
  update(data: Uint8Array): void {
    check(this.lib.SHA256_Update(this.#ctx, data, sizeArg(data.length)), "SHA256_Update");
  }

  /** Becomes a copy of `other` (the same bytes digested so far). */
  copyFrom(other: Sha256Context): void {
    this.#ctx.set(other.#ctx);
  }

  /** Writes the digest into `out` (32 bytes); the context is spent until {@link copyFrom}. */
  final(out: Uint8Array): void {
    if (out.length < 32) throw new RangeError(`a SHA-256 digest needs 32 bytes, got ${out.length}`);
    check(this.lib.SHA256_Final(out, this.#ctx), "SHA256_Final");
  }
}

function check(result: number, what: string): void {
  if (result !== 1) throw new Error(`libcrypto ${what} failed (${result})`);
}
