/**
 * The one-file form carries the kernel thread: `deno task bundle`'s output (`scripts/bundle.ts`) holds the
 * thread's own module (`lib/kernel/thread_module.ts`); the thread started from it ACKs a batch on a socket pair
 * like the sources' does, and the bundle runs with exactly the operators' flags.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { closeFd, FdSocket, openSocketPair, openWakePipe } from "../../ffi/fd_socket.ts";
import { startKernelThread } from "../../lib/kernel/thread_transport.ts";
import { JNLOP_JOOLD_ACK } from "../../lib/jool/messages.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "../helpers/daemon_process.ts";
import { DOUBLE_FAMILY_ID } from "../helpers/kernel_double.ts";
import { multicastBatch, sessionEntry } from "../helpers/kernel_messages.ts";

Deno.test("bundle: the one file runs with the operators' flags and its kernel thread ACKs a batch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "joold-bundle-" });
  try {
    const bundle = `${dir}/joold.js`;
    // The same script as `deno task bundle`, into a temporary file.
    const built = await new Deno.Command(DENO, {
      args: ["run", "--allow-read", "--allow-write", "--allow-run", `${ROOT}scripts/bundle.ts`, bundle],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(built.success, new TextDecoder().decode(built.stderr));
    const version = await new Deno.Command(DENO, {
      args: ["run", "--quiet", ...DAEMON_FLAGS, bundle, "--version"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(version.code, 0, new TextDecoder().decode(version.stderr));
    assert(new TextDecoder().decode(version.stdout).startsWith("joold "));

    // The bundle's own kernelThreadModule(): the Blob URL of the thread's code it carries, not a file.
    const { kernelThreadModule } = await import(`file://${bundle}`);
    const threadModule = kernelThreadModule();
    assert(String(threadModule).startsWith("blob:"), `the bundle's kernel thread module: ${threadModule}`);

    const [daemonEnd, kernelEnd] = openSocketPair();
    const transport = await startKernelThread({
      socket: {
        fd: daemonEnd,
        familyId: DOUBLE_FAMILY_ID,
        localPort: 7,
        send: () => {},
        close: () => closeFd(daemonEnd),
      },
      instance: "default",
      version: 0,
      threadModule,
    });
    const kernel = new FdSocket(kernelEnd, openWakePipe().readFd);
    try {
      assertEquals(kernel.send(multicastBatch(sessionEntry(1))), 0);
      assertEquals(kernel.wait(10_000), "readable", "no ACK from the bundle's kernel thread");
      const ack = kernel.receive();
      assert(ack instanceof Uint8Array);
      assertEquals(ack[16], JNLOP_JOOLD_ACK);
    } finally {
      await transport.close();
      closeFd(kernelEnd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
