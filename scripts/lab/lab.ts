/**
 * The VM lab's host side: build (cached) and boot a QEMU guest running the real Jool kernel module, with the
 * project tree, the deno binary and an output directory shared over 9p. Used by `deno task lab` and tests/vm.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Jool versions the lab can build. */
export const JOOL_VERSIONS = ["4.1.9", "4.1.13"] as const;
/** One of {@link JOOL_VERSIONS}. */
export type LabJoolVersion = typeof JOOL_VERSIONS[number];

/** The project's root directory (this file is scripts/lab/lab.ts). */
export const PROJECT_DIR: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** Build outputs, keyed by kernel and Jool version inside. Git-ignored. */
export const CACHE_DIR: string = join(PROJECT_DIR, ".lab-cache");
/** Guest output directories. Git-ignored. */
export const OUT_DIR: string = join(PROJECT_DIR, ".lab-out");
const LAB_DIR = join(PROJECT_DIR, "scripts", "lab");
const DENO_PKG_DIR = join(PROJECT_DIR, "node_modules", "@deno", "linux-x64-glibc");

/** A failure of one lab step, naming the step and what to do. */
export class LabError extends Error {
  /** @param step the step that failed @param message what happened and what to do */
  constructor(readonly step: string, message: string, options?: ErrorOptions) {
    super(`lab step '${step}' failed: ${message}`, options);
    this.name = "LabError";
  }
}

const started = Date.now();
/** Prints a progress line with the seconds elapsed since the lab module was loaded. */
export function progress(message: string): void {
  console.error(`[lab +${((Date.now() - started) / 1000).toFixed(0)}s] ${message}`);
}

/** Why the lab cannot run on this machine, or null when it can. */
export function labUnavailableReason(): string | null {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return "the lab needs Linux on x86_64";
  if (Deno.uid() !== 0) return "the lab needs root (apt-get, kernel module build, QEMU shares)";
  let kernels: string[] = [];
  try {
    kernels = [...Deno.readDirSync("/boot")].map((e) => e.name).filter((n) => n.startsWith("vmlinuz-"));
  } catch {
    kernels = [];
  }
  // With CI=true the build installs linux-image-amd64 itself; elsewhere the lab does not add a kernel unasked.
  if (kernels.length === 0 && Deno.env.get("CI") !== "true") {
    return "no /boot/vmlinuz-*: install linux-image-amd64 linux-headers-amd64 (CI=true installs them)";
  }
  return null;
}

async function run(step: string, cmd: string[], opts: { cwd?: string } = {}): Promise<string> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: opts.cwd,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new LabError(step, `${cmd.join(" ")} exited ${out.code}; see the lines above`);
  return text;
}

/** Path of the deno binary shared into the guest; runs `npm install` (pinned by package-lock.json) when missing. */
export async function denoBinary(): Promise<string> {
  const bin = join(DENO_PKG_DIR, "deno");
  try {
    Deno.statSync(bin);
    return bin;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    progress(`no ${bin}: running npm install in ${PROJECT_DIR}`);
  }
  await run("npm install", ["npm", "install", "--no-audit", "--no-fund"], { cwd: PROJECT_DIR });
  try {
    Deno.statSync(bin);
  } catch (cause) {
    throw new LabError("deno binary", `${bin} still missing after npm install; install deno via npm`, {
      cause,
    });
  }
  return bin;
}

/** A built lab: the kernel image and the initramfs for one Jool version. */
export interface LabImage {
  version: LabJoolVersion;
  kernel: string;
  initrd: string;
}

/** Builds (or reuses the cached) kernel modules and initramfs for `version`. */
export async function buildLab(version: LabJoolVersion): Promise<LabImage> {
  await denoBinary();
  const t0 = Date.now();
  progress(`building the lab for Jool ${version} (cached after the first run)`);
  const out = await run(`build Jool ${version}`, ["bash", join(LAB_DIR, "build.sh"), version, CACHE_DIR]);
  const initrd = out.trim().split("\n").at(-1) ?? "";
  const kernel = Deno.readTextFileSync(join(initrd, "..", "kernel")).trim();
  progress(`lab for Jool ${version} ready in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return { version, kernel, initrd };
}

/** How one boot went. */
export interface BootResult {
  /** Directory the guest wrote to (job.env, guest.log, results). */
  outDir: string;
  /** The scenario script's exit status, or null when the guest never reported one. */
  scenarioStatus: number | null;
  /** Wall seconds from QEMU start to exit. */
  seconds: number;
  /** Whether QEMU was killed by the timeout. */
  timedOut: boolean;
}

/**
 * Copies the daemon's sources (main.ts, lib/, ffi/, deno.json) as of git revision `rev` into `dir`, so a guest
 * can run that commit's daemon (`DAEMON_PROJ`) while the working tree changes. Returns the full commit id.
 */
export async function snapshotDaemonTree(rev: string, dir: string): Promise<string> {
  const commit = (await run(`git rev-parse ${rev}`, [
    "git",
    "-C",
    PROJECT_DIR,
    "rev-parse",
    "--verify",
    `${rev}^{commit}`,
  ]))
    .trim();
  Deno.mkdirSync(dir, { recursive: true });
  const archive = join(dir, "..", `tree-${commit.slice(0, 12)}.tar`);
  await run("git archive", [
    "git",
    "-C",
    PROJECT_DIR,
    "archive",
    "-o",
    archive,
    commit,
    "main.ts",
    "lib",
    "ffi",
    "deno.json",
  ]);
  await run("tar -x", ["tar", "-x", "-f", archive, "-C", dir]);
  Deno.removeSync(archive);
  return commit;
}

/**
 * Boots the guest once and runs `scripts/lab/guest/<scenario>.sh` there with `env` exported.
 * @param timeoutSeconds QEMU is killed after this long.
 * @param prepare runs after `outDir` is emptied and before the boot (e.g. {@link snapshotDaemonTree}).
 */
export async function bootLab(
  image: LabImage,
  scenario: string,
  env: Record<string, string>,
  outDir: string,
  timeoutSeconds: number,
  prepare?: (outDir: string) => Promise<void>,
): Promise<BootResult> {
  try {
    Deno.statSync(join(LAB_DIR, "guest", `${scenario}.sh`));
  } catch (cause) {
    throw new LabError("boot", `no scenario scripts/lab/guest/${scenario}.sh`, { cause });
  }
  try {
    Deno.removeSync(outDir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  Deno.mkdirSync(outDir, { recursive: true });
  if (prepare) await prepare(outDir);
  const job = { ...env, LAB_SCENARIO: scenario, JOOL_VERSION: image.version };
  Deno.writeTextFileSync(
    join(outDir, "job.env"),
    Object.entries(job).map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'\n`).join(""),
  );
  const denoDir = join(await denoBinary(), "..");
  const share = (
    path: string,
    tag: string,
    ro: boolean,
  ) => ["-virtfs", `local,path=${path},mount_tag=${tag},security_model=none${ro ? ",readonly=on" : ""}`];
  const args = [
    "--kill-after=5",
    String(timeoutSeconds),
    "qemu-system-x86_64",
    ...["-accel", "tcg,thread=multi", "-cpu", "max", "-m", "2048", "-smp", "2"],
    ...["-display", "none", "-serial", "stdio", "-nic", "none", "-no-reboot", "-monitor", "none"],
    ...["-kernel", image.kernel, "-initrd", image.initrd],
    ...["-append", "console=ttyS0 panic=-1 quiet"],
    ...["-device", "virtio-rng-pci"],
    ...share(PROJECT_DIR, "proj", true),
    ...share(denoDir, "deno", true),
    ...share(outDir, "out", false),
  ];
  progress(`booting Jool ${image.version} guest, scenario '${scenario}' (timeout ${timeoutSeconds}s)`);
  const t0 = Date.now();
  const child = new Deno.Command("timeout", { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const console = await Deno.open(join(outDir, "console.log"), { write: true, create: true, truncate: true });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      await console.write(new TextEncoder().encode(chunk));
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const clean = line.replace(/\r$/, "");
        if (clean.startsWith("[guest")) progress(clean);
      }
    }
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  console.close();
  const seconds = (Date.now() - t0) / 1000;
  const timedOut = status.code === 124 || status.code === 137;
  let scenarioStatus: number | null = null;
  try {
    scenarioStatus = Number(Deno.readTextFileSync(join(outDir, "exit-status")).trim());
  } catch {
    scenarioStatus = null;
  }
  progress(
    `guest exited after ${seconds.toFixed(0)}s` + (timedOut ? " (TIMEOUT: QEMU killed)" : "") +
      `, scenario status ${scenarioStatus ?? "unknown"}`,
  );
  if (!timedOut && status.code !== 0 && scenarioStatus === null) {
    throw new LabError(
      "boot",
      `QEMU exited ${status.code} before the scenario ran; see ${join(outDir, "console.log")}`,
    );
  }
  return { outDir, scenarioStatus, seconds, timedOut };
}
