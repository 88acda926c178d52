/**
 * HMAC-SHA-256 (RFC 2104) for the authenticated wire, one function per key. Two ways to the same tags
 * (unit-tested against `createHmac`): libcrypto's SHA-256 contexts when `libcrypto.so.3` loads
 * (`ffi/libcrypto.ts`), else two one-shot `node:crypto` `hash` calls. Why two: per datagram, the first costs
 * about the digest alone; the second adds several µs of call overhead, on both routers, for every datagram
 * (BENCHMARKS.md "Authentication").
 * @module
 */
import { hash } from "node:crypto";
import { type Libcrypto, loadLibcrypto, Sha256Context } from "../../ffi/libcrypto.ts";
import type { Mac } from "./frame.ts";

/** SHA-256's block size: HMAC's pads. */
const BLOCK = 64;

/** Which implementation {@link hmacSha256} uses on this host. */
export type HmacBackend = "libcrypto" | "node:crypto";

/** The implementation {@link hmacSha256} picks: libcrypto when it loads. */
export function hmacBackend(): HmacBackend {
  return loadLibcrypto() ? "libcrypto" : "node:crypto";
}

/**
 * HMAC-SHA-256 with `key`, by the {@link hmacBackend}. The tag returned may be a buffer the function reuses:
 * valid until its next call (every caller copies or compares it at once).
 */
export function hmacSha256(key: Uint8Array): Mac {
  const lib = loadLibcrypto();
  return lib ? libcryptoHmacSha256(key, lib) : nodeHmacSha256(key);
}

/** The key's block, XORed with `pad` (keys longer than a block are hashed first, as RFC 2104 says). */
function padded(key: Uint8Array, pad: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(key.length > BLOCK ? hash("sha256", key, "buffer") : key);
  for (let i = 0; i < BLOCK; i++) block[i] ^= pad;
  return block;
}

/**
 * Through libcrypto: the contexts after the inner and outer pads are computed once per key; per message, a
 * copy of each is fed the message (then the inner digest) and finished. Nothing allocated per call.
 */
export function libcryptoHmacSha256(key: Uint8Array, lib: Libcrypto): Mac {
  const inner = new Sha256Context(lib);
  inner.update(padded(key, 0x36));
  const outer = new Sha256Context(lib);
  outer.update(padded(key, 0x5c));
  const work = new Sha256Context(lib);
  const innerDigest = new Uint8Array(32);
  const tag = new Uint8Array(32);
  return (data) => {
    work.copyFrom(inner);
    work.update(data);
    work.final(innerDigest);
    work.copyFrom(outer);
    work.update(innerDigest);
    work.final(tag);
    return tag;
  };
}

/**
 * Through `node:crypto`, from two one-shot `hash` calls over buffers kept between calls: the message is copied
 * behind the inner pad, the inner digest behind the outer pad (no Hmac stream object per message).
 */
export function nodeHmacSha256(key: Uint8Array): Mac {
  let inner = new Uint8Array(BLOCK + 2048);
  inner.set(padded(key, 0x36));
  const outer = new Uint8Array(BLOCK + 32);
  outer.set(padded(key, 0x5c));
  return (data) => {
    if (BLOCK + data.length > inner.length) {
      const bigger = new Uint8Array(BLOCK + data.length);
      bigger.set(inner.subarray(0, BLOCK));
      inner = bigger;
    }
    inner.set(data, BLOCK);
    outer.set(hash("sha256", inner.subarray(0, BLOCK + data.length), "buffer"), BLOCK);
    return hash("sha256", outer, "buffer");
  };
}
