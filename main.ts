/**
 * joold: Jool's session-sync daemon on Deno. Wiring only: parse the command line, pick the logger, run. The
 * kernel thread's Worker runs a module of its own (`lib/kernel/thread_module.ts` says where each form finds it).
 * @module
 */
import { parseCli, USAGE } from "./lib/cli.ts";
import { EXIT, JooldError } from "./lib/errors.ts";
import { LibraryLoadError } from "./ffi/libc.ts";
import { SinkLogger, stderrSink, syslogSink } from "./lib/sink_logger.ts";
import { checkConfig, runDaemon } from "./lib/daemon.ts";
import { libnlKernel } from "./lib/kernel/libnl_transport.ts";
import { kernelThreadModule } from "./lib/kernel/thread_module.ts";
import type { KernelAccess } from "./lib/kernel/transport.ts";
import { JOOLD_VERSION } from "./lib/version.ts";

function fail(message: string, code: number): never {
  console.error(`joold: ${message}`);
  Deno.exit(code);
}

/**
 * The program: `args` as on the command line, `kernel` how to reach the kernel. Exits the process on errors
 * with one line and the documented status. Test entry points call it with a kernel double.
 */
export async function main(args: string[], kernel: KernelAccess): Promise<void> {
  let cli;
  try {
    cli = parseCli(args);
  } catch (error) {
    if (error instanceof JooldError) fail(error.message, error.exitCode);
    throw error;
  }
  if (cli.mode === "help") {
    console.log(USAGE);
    return;
  }
  if (cli.mode === "version") {
    console.log(`joold ${JOOLD_VERSION} (Deno ${Deno.version.deno}; speaks Jool 4.1.x session sync)`);
    return;
  }
  const log = new SinkLogger(cli.logLevel, cli.syslog ? syslogSink() : stderrSink());
  try {
    if (cli.mode === "check") {
      console.log(await checkConfig(cli, log));
      return;
    }
    await runDaemon(cli, kernel, log);
  } catch (error) {
    if (error instanceof JooldError) fail(error.message, error.exitCode);
    if (error instanceof LibraryLoadError) fail(error.message, EXIT.LIBRARY);
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      fail(
        `${error.message}; run with --allow-net --allow-ffi --allow-read --unstable-net`,
        EXIT.RUNTIME,
      );
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    fail(`unexpected failure: ${message.split("\n")[0]}`, EXIT.RUNTIME);
  }
}

// Exported so that a one-file form's own thread module can be reached from outside it (tests/unit/bundle.test.ts).
export { kernelThreadModule };

if (import.meta.main) {
  await main(Deno.args, libnlKernel(kernelThreadModule()));
  Deno.exit(0);
}
