/**
 * Scheduling of the calling thread: the kernel thread asks for the lowest real-time priority (SCHED_FIFO 1), so
 * that when a kernel batch wakes it, it runs at once instead of waiting for a CPU behind the daemon's main
 * thread, the peer's traffic or anything else of normal priority. It only ever runs for the few microseconds of
 * a recv and an ACK and then blocks again, so it cannot starve the machine (and Linux caps real-time tasks at
 * 95 % of each second anyway). conntrackd offers the same for its sync thread (`Scheduler { Type FIFO }`).
 * Also the CPU affinity of the calling thread, by which the kernel thread gets a CPU the daemon's main thread
 * keeps off (`lib/kernel/thread.ts` says why).
 * @module
 */
import { lastErrno, loadLibc, sizeArg } from "./libc.ts";

/** SCHED_FIFO (real-time, first in first out) from <sched.h>. */
const SCHED_FIFO = 1;

/**
 * Puts the calling thread in SCHED_FIFO at `priority` (1 = the lowest real-time priority). Returns 0, or the
 * errno of the refusal (EPERM without CAP_SYS_NICE or with an RLIMIT_RTPRIO of 0).
 */
export function raiseCallingThread(priority = 1): number {
  const param = new Int32Array([priority]);
  if (loadLibc().sched_setscheduler(0, SCHED_FIFO, new Uint8Array(param.buffer)) === 0) return 0;
  return lastErrno();
}

/** Bytes of a CPU mask: 1 024 CPUs, as glibc's cpu_set_t. */
const CPU_MASK_BYTES = 128;

/** The calling thread's CPU mask (a bit per CPU), or the errno of the refusal. */
export function callingThreadCpus(): Uint8Array | number {
  const mask = new Uint8Array(CPU_MASK_BYTES);
  return loadLibc().sched_getaffinity(0, sizeArg(CPU_MASK_BYTES), mask) === 0 ? mask : lastErrno();
}

/** Sets the calling thread's CPU mask. Returns 0, or the errno of the refusal. */
export function setCallingThreadCpus(mask: Uint8Array): number {
  if (mask.length !== CPU_MASK_BYTES) {
    throw new RangeError(`a CPU mask is ${CPU_MASK_BYTES} bytes, not ${mask.length}`);
  }
  return loadLibc().sched_setaffinity(0, sizeArg(CPU_MASK_BYTES), mask) === 0 ? 0 : lastErrno();
}

/** The CPUs of `mask`, in increasing order. */
export function cpusOf(mask: Uint8Array): number[] {
  const cpus: number[] = [];
  for (let cpu = 0; cpu < mask.length * 8; cpu++) if (mask[cpu >> 3] & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

/** A CPU mask of `cpus`. */
export function cpuMask(cpus: readonly number[]): Uint8Array {
  const mask = new Uint8Array(CPU_MASK_BYTES);
  for (const cpu of cpus) mask[cpu >> 3] |= 1 << (cpu & 7);
  return mask;
}
