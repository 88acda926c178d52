/**
 * Runs the real daemon (main.ts) as a child process, for tests that check what an operator sees.
 * @module
 */

/** Absolute path of the project root. */
export const ROOT = new URL("../../", import.meta.url).pathname;
/** The deno binary running the tests. */
export const DENO = Deno.execPath();
/** Permission flags of `deno task start` (README "Install and run"). */
export const PERMISSION_FLAGS = ["--unstable-net", "--allow-net", "--allow-ffi", "--allow-read"];
/**
 * V8 heap flags joold runs with everywhere (`deno task start`/`compile`, README, the systemd unit): why and
 * the measurements in BENCHMARKS.md "Memory (VmRSS)". tests/unit/daemon_flags.test.ts checks the copies.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=1";
/** Every flag of `deno task start`: the permissions and the V8 heap flags. */
export const DAEMON_FLAGS = [...PERMISSION_FLAGS, V8_FLAGS];

/** Result of a finished daemon run. */
export interface DaemonResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run FLAGS main.ts ...args` in `cwd` and waits for it. */
export async function runJoold(args: string[], cwd = ROOT): Promise<DaemonResult> {
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
