/**
 * `deno task check` enforces CONTRIBUTING.md's rules: the import direction (scripts/check_imports.ts) and JSDoc
 * on every export (`deno doc --lint`). Each is fed a bad input and must fail naming the offender.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  checkImports,
  checkTree,
  importSpecifiers,
  resolveSpecifier,
  violationLine,
} from "../../scripts/check_imports.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("check_imports: ffi importing lib, lib importing tests and a cycle each fail with the offending import", () => {
  const lines = checkImports(
    new Map([
      ["main.ts", ["./lib/daemon.ts"]],
      ["lib/daemon.ts", ["./relay.ts", "../ffi/host.ts", "npm:fast-check@4", "node:path"]],
      ["lib/relay.ts", ["./wire.ts", "../tests/helpers/assert.ts"]],
      ["lib/wire.ts", ["./relay.ts"]],
      ["ffi/host.ts", ["./libc.ts", "../lib/net/address.ts"]],
      ["ffi/libc.ts", []],
      ["tests/unit/x.test.ts", ["../../lib/relay.ts", "../../scripts/check_imports.ts"]],
    ]),
  ).map(violationLine);
  assertEquals(lines, [
    "ffi/host.ts imports ../lib/net/address.ts: ffi/ depends on nothing outside ffi/ (ffi/ ← lib/ ← main.ts)",
    "lib/relay.ts imports ../tests/helpers/assert.ts: lib/ must not import main.ts, tests/ or scripts/ " +
    "(ffi/ ← lib/ ← main.ts)",
    "lib/relay.ts imports ./wire.ts: import cycle lib/relay.ts → lib/wire.ts → lib/relay.ts",
  ]);
});

Deno.test("check_imports: ffi importing main.ts or scripts, lib importing main.ts, a self-import and a 3-cycle", () => {
  const lines = checkImports(
    new Map([
      ["ffi/a.ts", ["../main.ts", "../scripts/x.ts"]],
      ["lib/a.ts", ["../main.ts", "./a.ts"]],
      ["lib/x/b.ts", ["../c.ts"]],
      ["lib/c.ts", ["./d.ts"]],
      ["lib/d.ts", ["./x/b.ts"]],
    ]),
  ).map(violationLine);
  assert(
    lines.some((l) => l.startsWith("ffi/a.ts imports ../main.ts: ffi/ depends on nothing")),
    lines.join("\n"),
  );
  assert(lines.some((l) => l.startsWith("ffi/a.ts imports ../scripts/x.ts: ffi/")), lines.join("\n"));
  assert(
    lines.some((l) => l.startsWith("lib/a.ts imports ../main.ts: lib/ must not import")),
    lines.join("\n"),
  );
  assert(lines.includes("lib/a.ts imports ./a.ts: import cycle lib/a.ts → lib/a.ts"), lines.join("\n"));
  assert(
    lines.includes("lib/c.ts imports ./d.ts: import cycle lib/c.ts → lib/d.ts → lib/x/b.ts → lib/c.ts"),
    lines.join("\n"),
  );
  assertEquals(lines.length, 5);
});

Deno.test("check_imports: specifiers are read from code, not from comments or template literals", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type {\n  B,\n  C,\n} from "../b.ts";',
    'export { d } from "./d.ts";',
    'export * from "./e.ts";',
    'import "./side_effect.ts";',
    'const f = await import("./f.ts");',
    '// import { x } from "./commented.ts";',
    '/* import { y } from "./block.ts"; */',
    'const child = `import { z } from "${ROOT}ffi/kernel_files.ts";`;',
  ].join("\n");
  assertEquals(importSpecifiers(source).sort(), [
    "../b.ts",
    "./a.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./side_effect.ts",
  ]);
  assertEquals(resolveSpecifier("lib/net/channel.ts", "../../ffi/host.ts"), "ffi/host.ts");
  assertEquals(resolveSpecifier("lib/net/channel.ts", "npm:x"), undefined);
  assertEquals(resolveSpecifier("main.ts", "../elsewhere.ts"), undefined);
});

Deno.test("check_imports: this repository follows the direction", () => {
  assertEquals(checkTree(ROOT).map(violationLine), []);
});

Deno.test("check_imports CLI: a bad tree exits 1 with the offending import on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "joold-imports-" });
  try {
    await Deno.mkdir(`${dir}/ffi`);
    await Deno.mkdir(`${dir}/lib`);
    await Deno.writeTextFile(`${dir}/main.ts`, 'import "./lib/a.ts";\n');
    await Deno.writeTextFile(`${dir}/lib/a.ts`, 'import "../ffi/b.ts";\n');
    await Deno.writeTextFile(`${dir}/ffi/b.ts`, 'import { x } from "../lib/a.ts";\nexport const y = x;\n');
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", `${ROOT}scripts/check_imports.ts`, dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, stderr);
    assert(stderr.includes("ffi/b.ts imports ../lib/a.ts: ffi/ depends on nothing outside ffi/"), stderr);
    assert(stderr.includes("import cycle ffi/b.ts → lib/a.ts → ffi/b.ts"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doc lint: an export without JSDoc fails deno doc --lint, naming the symbol's file and line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "joold-doclint-" });
  try {
    const file = `${dir}/undocumented.ts`;
    await Deno.writeTextFile(
      file,
      [
        "/**",
        " * A module with one documented and one undocumented export.",
        " * @module",
        " */",
        "",
        "/** Documented. */",
        "export const documented = 1;",
        "",
        "export function undocumentedExport(): number {",
        "  return 2;",
        "}",
        "",
      ].join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--lint", file],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert(!out.success, text);
    assert(text.includes("missing-jsdoc"), text);
    assert(text.includes(`${file}:9`), text);
    assert(text.includes("undocumentedExport"), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
