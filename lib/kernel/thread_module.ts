/**
 * Where the kernel thread's code comes from (`lib/kernel/thread_main.ts`, the Worker's own entry module) in each
 * form of the program:
 *
 * - `main.ts` run from the sources, and `deno task compile`'s executable (its `--include` carries the file): the
 *   file next to this one;
 * - `deno task bundle`'s one file (`scripts/bundle.ts`): the thread's own bundle, written into
 *   {@link BUNDLED_SOURCE} as a string and started from a Blob URL.
 * @module
 */

/**
 * The kernel thread's bundled code, or (from the sources) the placeholder `scripts/bundle.ts` replaces. The
 * script finds the placeholder as a whole quoted string exactly once; {@link kernelThreadModule} looks only at
 * its prefix, so that the check itself is not a second copy of it.
 */
const BUNDLED_SOURCE: string = "@@joold-kernel-thread-source@@";

let bundledUrl: string | undefined;

/** The module the kernel thread's Worker runs (the same URL on every call). */
export function kernelThreadModule(): string | URL {
  if (BUNDLED_SOURCE.startsWith("@@joold-kernel-thread")) return new URL("./thread_main.ts", import.meta.url);
  bundledUrl ??= URL.createObjectURL(new Blob([BUNDLED_SOURCE], { type: "text/javascript" }));
  return bundledUrl;
}
