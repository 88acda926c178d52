/**
 * HMAC-SHA-256 over one datagram's worth of bytes: `node:crypto` (synchronous) against WebCrypto
 * (`crypto.subtle`, asynchronous), to choose what the authenticated wire (`lib/auth/`) uses. CPU only, no I/O:
 * `npx deno run scripts/bench/hmac_bench.ts [bytes] [iterations]` (BENCHMARKS.md "Authentication").
 * @module
 */
import { createHmac, createSecretKey } from "node:crypto";

const bytes = Number(Deno.args[0] ?? 1468);
const iterations = Number(Deno.args[1] ?? 200_000);
const key = crypto.getRandomValues(new Uint8Array(32));
const data = crypto.getRandomValues(new Uint8Array(bytes));

function report(name: string, ms: number): void {
  const us = (ms * 1000) / iterations;
  console.log(
    `${name}: ${us.toFixed(2)} µs per ${bytes}-byte datagram (${Math.round(1e6 / us)} /s, one core)`,
  );
}

// Warm both up before timing.
const keyObject = createSecretKey(key);
for (let i = 0; i < 10_000; i++) createHmac("sha256", keyObject).update(data).digest();
let t = performance.now();
for (let i = 0; i < iterations; i++) createHmac("sha256", keyObject).update(data).digest();
report("node:crypto createHmac (sync, KeyObject)", performance.now() - t);

t = performance.now();
for (let i = 0; i < iterations; i++) createHmac("sha256", key).update(data).digest();
report("node:crypto createHmac (sync, raw key)", performance.now() - t);

const subtleKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
  "sign",
  "verify",
]);
for (let i = 0; i < 10_000; i++) await crypto.subtle.sign("HMAC", subtleKey, data);
t = performance.now();
for (let i = 0; i < iterations; i++) await crypto.subtle.sign("HMAC", subtleKey, data);
report("WebCrypto crypto.subtle.sign (async, awaited one by one)", performance.now() - t);

t = performance.now();
const batch = 64;
for (let i = 0; i < iterations; i += batch) {
  const all: Promise<ArrayBuffer>[] = [];
  for (let j = 0; j < batch; j++) all.push(crypto.subtle.sign("HMAC", subtleKey, data));
  await Promise.all(all);
}
report(`WebCrypto crypto.subtle.sign (async, ${batch} in flight)`, performance.now() - t);
