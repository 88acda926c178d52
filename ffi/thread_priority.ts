/**
 * Scheduling of the calling thread: the kernel thread asks for the lowest real-time priority (SCHED_FIFO 1), so
 * that when a kernel batch wakes it, it runs at once instead of waiting for a CPU behind the daemon's main
 * thread, the peer's traffic or anything else of normal priority. It only ever runs for the few microseconds of
 * a recv and an ACK and then blocks again, so it cannot starve the machine (and Linux caps real-time tasks at
 * 95 % of each second anyway). conntrackd offers the same for its sync thread (`Scheduler { Type FIFO }`).
 * @module
 */
import { lastErrno, loadLibc } from "./libc.ts";

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
