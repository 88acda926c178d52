/** Jool versions: parsing, the supported range, the session format each implies, /sys reading. */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  formatFor,
  parseJoolVersion,
  readLoadedJoolVersion,
  tryParseJoolVersion,
  unsupportedReason,
} from "../../lib/kernel/version.ts";
import { EXIT, JooldError } from "../../lib/errors.ts";

function exitOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof JooldError) return error.exitCode;
    throw error;
  }
  return undefined;
}

Deno.test("version: 4.1.13 and 4.1.13.0 parse; garbage does not", () => {
  assertEquals(tryParseJoolVersion("4.1.13"), { major: 4, minor: 1, revision: 13, dev: 0 });
  assertEquals(tryParseJoolVersion("4.1.13.0\n"), { major: 4, minor: 1, revision: 13, dev: 0 });
  assertEquals(tryParseJoolVersion("4.1.9.2"), { major: 4, minor: 1, revision: 9, dev: 2 });
  for (const bad of ["", "4.1", "4.1.x", "4.1.256", "v4.1.13", "4.1.13.0.1"]) {
    assertEquals(tryParseJoolVersion(bad), undefined, bad);
  }
});

Deno.test("version: format A up to 4.1.11, B for 4.1.12, C from 4.1.13", () => {
  const f = (t: string) => formatFor(parseJoolVersion(t));
  assertEquals([f("4.1.0"), f("4.1.9"), f("4.1.11"), f("4.1.12"), f("4.1.13"), f("4.1.15")], [
    "A",
    "A",
    "A",
    "B",
    "C",
    "C",
  ]);
});

Deno.test("version: not 4.1, or the 4.2 rc (4.1.255.x), is EXIT.KERNEL_UNSUPPORTED", () => {
  assertEquals(exitOf(() => parseJoolVersion("4.2.0")), EXIT.KERNEL_UNSUPPORTED);
  assertEquals(exitOf(() => parseJoolVersion("4.0.9")), EXIT.KERNEL_UNSUPPORTED);
  assertEquals(exitOf(() => parseJoolVersion("4.1.255.5")), EXIT.KERNEL_UNSUPPORTED);
  assertEquals(exitOf(() => parseJoolVersion("new")), EXIT.USAGE);
  assert(unsupportedReason({ major: 4, minor: 1, revision: 255, dev: 5 })!.includes("release candidate"));
  assertEquals(unsupportedReason({ major: 4, minor: 1, revision: 9, dev: 0 }), undefined);
});

Deno.test("version: /sys/module/jool/version is read when present, undefined when absent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "joold-version-" });
  try {
    await Deno.writeTextFile(`${dir}/version`, "4.1.12\n");
    assertEquals(readLoadedJoolVersion(`${dir}/version`), { major: 4, minor: 1, revision: 12, dev: 0 });
    await Deno.writeTextFile(`${dir}/rc`, "4.1.255.5\n");
    assertEquals(exitOf(() => readLoadedJoolVersion(`${dir}/rc`)), EXIT.KERNEL_UNSUPPORTED);
    assertEquals(readLoadedJoolVersion(`${dir}/missing`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
