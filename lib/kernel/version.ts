/**
 * The local Jool's version and the session format it implies (docs/protocol.md §5, §7): read from
 * /sys/module/jool/version when possible, else learnt from the kernel's multicasts.
 * @module
 */
import { readKernelFile } from "../../ffi/kernel_files.ts";
import { EXIT, JooldError } from "../errors.ts";
import type { SessionFormat } from "../session/format.ts";
import type { JoolVersion } from "../jool/header.ts";
import { versionText } from "../jool/header.ts";

export type { JoolVersion } from "../jool/header.ts";
export { versionText } from "../jool/header.ts";

/** Where the loaded module announces its version. */
export const SYS_VERSION_PATH = "/sys/module/jool/version";

/** Parses "4.1.13" or "4.1.13.0"; undefined when the text is not a version. */
export function tryParseJoolVersion(text: string): JoolVersion | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?$/.exec(text.trim());
  if (!m) return undefined;
  const [major, minor, revision, dev] = [m[1], m[2], m[3], m[4] ?? "0"].map(Number);
  if ([major, minor, revision, dev].some((n) => n > 255)) return undefined;
  return { major, minor, revision, dev };
}

/**
 * Why this daemon cannot speak to a kernel of version `v`, or undefined if it can: only 4.1.x is supported,
 * and 4.1.255.x is the 4.2 release candidate, which renumbers the joold commands.
 */
export function unsupportedReason(v: JoolVersion): string | undefined {
  if (v.major !== 4 || v.minor !== 1) {
    return `Jool ${versionText(v)} is not supported: this joold speaks Jool 4.1.x only`;
  }
  if (v.revision === 255) {
    return `Jool ${versionText(v)} is the 4.2 release candidate, which renumbers the joold commands; ` +
      "this joold speaks Jool 4.1.x only";
  }
  return undefined;
}

/**
 * Parses a version and checks it is supported. Throws JooldError: EXIT.USAGE for text that is not a version,
 * EXIT.KERNEL_UNSUPPORTED for a version this daemon cannot speak.
 */
export function parseJoolVersion(text: string, source = "version"): JoolVersion {
  const v = tryParseJoolVersion(text);
  if (!v) {
    throw new JooldError(EXIT.USAGE, `${source}: not a Jool version, got "${text.trim()}"; use e.g. 4.1.13`);
  }
  const reason = unsupportedReason(v);
  if (reason) throw new JooldError(EXIT.KERNEL_UNSUPPORTED, `${source}: ${reason}`);
  return v;
}

/** Session format of a 4.1.x kernel: ≤4.1.11 → A, 4.1.12 → B, ≥4.1.13 → C. */
export function formatFor(v: JoolVersion): SessionFormat {
  if (v.revision <= 11) return "A";
  if (v.revision === 12) return "B";
  return "C";
}

/**
 * Reads the loaded module's version from /sys. Undefined when the file cannot be read (no permission, no
 * /sys, module not loaded: the kernel channel reports that more precisely). Throws JooldError
 * EXIT.KERNEL_UNSUPPORTED for an unsupported version, EXIT.KERNEL_UNSUPPORTED too for unreadable content.
 */
export function readLoadedJoolVersion(path = SYS_VERSION_PATH): JoolVersion | undefined {
  // Through libc: Deno's own file API wants --allow-all for /sys (ffi/kernel_files.ts).
  const text = readKernelFile(path, 256);
  if (text === undefined) return undefined;
  const v = tryParseJoolVersion(text);
  if (!v) {
    throw new JooldError(
      EXIT.KERNEL_UNSUPPORTED,
      `${path}: not a Jool version, got "${text.trim()}"; is this really Jool's module?`,
    );
  }
  const reason = unsupportedReason(v);
  if (reason) throw new JooldError(EXIT.KERNEL_UNSUPPORTED, `${path}: ${reason}`);
  return v;
}
