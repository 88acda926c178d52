/**
 * The kernel thread's entry module: the Worker runs this file, not the program's entry module, so the thread's
 * V8 isolate loads only the thread's own code (`lib/kernel/thread.ts` and what it imports) instead of the whole
 * program's module graph (6–7 MiB less anonymous memory, BENCHMARKS.md "Kernel thread, continued").
 * `lib/kernel/thread_module.ts` says where each form of the program finds it.
 * @module
 */
import { kernelThreadMain } from "./thread.ts";

kernelThreadMain();
