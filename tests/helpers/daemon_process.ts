/**
 * Runs the real daemon (main.ts) as a child process, for tests that check what an operator sees.
 * @module
 */

/** Absolute path of the project root. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The deno binary running the tests. */
export const DENO = Deno.execPath();
/** Permission flags of `deno task start`. */
export const DAEMON_FLAGS = ["--unstable-net", "--allow-net", "--allow-ffi", "--allow-read"];

/** Result of a finished daemon run. */
export interface DaemonResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run FLAGS main.ts ...args` in `cwd` and waits for it. */
export async function runDaemon(args: string[], cwd = ROOT): Promise<DaemonResult> {
  const out = await new Deno.Command(DENO, {
    args: ["run", "--quiet", ...DAEMON_FLAGS, `${ROOT}main.ts`, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}
