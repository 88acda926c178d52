/**
 * The import direction CONTRIBUTING.md states, checked: `ffi/` ← `lib/` ← `main.ts`.
 *
 * - `ffi/` imports nothing from `lib/`, `main.ts`, `tests/` or `scripts/`;
 * - `lib/` imports nothing from `main.ts`, `tests/` or `scripts/`;
 * - no import cycle among `main.ts`, `lib/` and `ffi/` (type-only imports included: a cycle of types is still
 *   two files that cannot be understood apart).
 *
 * {@link checkImports} is a pure function over file paths and their import specifiers; the CLI reads the
 * files (`deno run --allow-read scripts/check_imports.ts [ROOT]`), prints one line per violation —
 * `FILE imports SPEC: <rule>` — and exits 1 when there is any. Part of `deno task check`.
 * @module
 */
import { posix } from "node:path";

/** One import against the rules. */
export interface ImportViolation {
  /** The importing file, relative to the repository root (e.g. `ffi/host.ts`). */
  readonly file: string;
  /** The specifier as written (e.g. `../lib/net/address.ts`). */
  readonly specifier: string;
  /** The rule it breaks. */
  readonly rule: string;
}

/** Where a repository-relative path sits in the layering. */
type Layer = "main" | "lib" | "ffi" | "tests" | "scripts" | "other";

function layerOf(path: string): Layer {
  if (path === "main.ts") return "main";
  const top = path.split("/")[0];
  return top === "lib" || top === "ffi" || top === "tests" || top === "scripts" ? top : "other";
}

/** What each checked layer must not import, and the rule's wording. */
const FORBIDDEN: Partial<Record<Layer, { readonly targets: readonly Layer[]; readonly rule: string }>> = {
  ffi: {
    targets: ["lib", "main", "tests", "scripts"],
    rule: "ffi/ depends on nothing outside ffi/ (ffi/ ← lib/ ← main.ts)",
  },
  lib: {
    targets: ["main", "tests", "scripts"],
    rule: "lib/ must not import main.ts, tests/ or scripts/ (ffi/ ← lib/ ← main.ts)",
  },
};

/**
 * The repository-relative path a specifier designates, or undefined for one that names no file of the
 * repository (`npm:`, `node:`, URLs, or a path that leaves the root).
 */
export function resolveSpecifier(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const resolved = posix.normalize(posix.join(posix.dirname(file), specifier));
  return resolved.startsWith("../") ? undefined : resolved;
}

/**
 * Checks the import rules over `files`: each repository-relative path (`main.ts`, `lib/relay.ts`, …) with the
 * specifiers it imports, as written. Returns the violations, sorted by file; empty when the tree is clean.
 * Files of `tests/` and `scripts/` may be given: they may import anything, and take part in no cycle check.
 */
export function checkImports(files: ReadonlyMap<string, readonly string[]>): ImportViolation[] {
  const violations: ImportViolation[] = [];
  const graph = new Map<string, { target: string; specifier: string }[]>();
  for (const [file, specifiers] of files) {
    const layer = layerOf(file);
    const layered = layer === "main" || layer === "lib" || layer === "ffi";
    if (layered) graph.set(file, []);
    for (const specifier of specifiers) {
      const target = resolveSpecifier(file, specifier);
      if (target === undefined) continue;
      const forbidden = FORBIDDEN[layer];
      if (forbidden?.targets.includes(layerOf(target))) {
        violations.push({ file, specifier, rule: forbidden.rule });
      }
      const targetLayer = layerOf(target);
      if (layered && (targetLayer === "main" || targetLayer === "lib" || targetLayer === "ffi")) {
        graph.get(file)!.push({ target, specifier });
      }
    }
  }
  violations.push(...cycles(graph));
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.specifier.localeCompare(b.specifier));
}

/** One violation per strongly connected component of more than one file (or a file importing itself). */
function cycles(graph: Map<string, { target: string; specifier: string }[]>): ImportViolation[] {
  const out: ImportViolation[] = [];
  for (const component of stronglyConnected(graph)) {
    const members = new Set(component);
    const start = [...component].sort()[0];
    const selfLoop = graph.get(start)?.some((e) => e.target === start);
    if (component.length === 1 && !selfLoop) continue;
    const path = cyclePath(graph, start, members);
    const first = graph.get(start)!.find((e) => e.target === path[1])!;
    out.push({ file: start, specifier: first.specifier, rule: `import cycle ${path.join(" → ")}` });
  }
  return out;
}

/** Tarjan's algorithm, iterative (no recursion limit on deep chains). */
function stronglyConnected(graph: Map<string, { target: string }[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: string[][] = [];
  let next = 0;
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const target = edges[frame.edge++].target;
        if (!graph.has(target)) continue; // imported but not given: no edges to follow
        if (!index.has(target)) {
          index.set(target, next);
          low.set(target, next++);
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, edge: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        result.push(component);
      }
    }
  }
  return result;
}

/** A shortest path start → … → start inside one component (breadth-first). */
function cyclePath(graph: Map<string, { target: string }[]>, start: string, members: Set<string>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const { target } of graph.get(node) ?? []) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

/**
 * The specifiers a TypeScript source imports or re-exports (static `import … from`, `import "…"`,
 * `export … from`, and `import("…")` with a literal). Comments and template literals are skipped, so an
 * import written inside a test's child-process source does not count.
 */
export function importSpecifiers(source: string): string[] {
  const code = stripCommentsAndTemplates(source);
  const out: string[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*(["'])([^"'\n]+)\1/g,
    /\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*(["'])([^"'\n]+)\1/g,
    /\bimport\s*(["'])([^"'\n]+)\1/g,
    /\bimport\s*\(\s*(["'])([^"'\n]+)\1\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) out.push(match[2]);
  }
  return [...new Set(out)];
}

/** Replaces comments and template-literal bodies with spaces; keeps ordinary strings. */
function stripCommentsAndTemplates(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const d = source[i + 1];
    if (c === "/" && d === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && d === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
      out += " ";
    } else if (c === "`") {
      i++;
      while (i < source.length && source[i] !== "`") i += source[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every `.ts` file under `dir` (relative to `root`), sorted. */
function typeScriptFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(posix.join(root, dir))];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return out;
    throw error;
  }
  for (const entry of entries) {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory) out.push(...typeScriptFiles(root, path));
    else if (entry.isFile && entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Reads `main.ts`, `lib/` and `ffi/` under `root` and checks them. */
export function checkTree(root: string): ImportViolation[] {
  const paths = ["main.ts", ...typeScriptFiles(root, "lib"), ...typeScriptFiles(root, "ffi")];
  const files = new Map<string, string[]>();
  for (const path of paths) {
    try {
      files.set(path, importSpecifiers(Deno.readTextFileSync(posix.join(root, path))));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error; // main.ts absent: nothing to check there
    }
  }
  return checkImports(files);
}

/** `FILE imports SPEC: <rule>`. */
export function violationLine(v: ImportViolation): string {
  return `${v.file} imports ${v.specifier}: ${v.rule}`;
}

if (import.meta.main) {
  const root = Deno.args[0] ?? posix.join(posix.dirname(new URL(import.meta.url).pathname), "..");
  const violations = checkTree(root);
  for (const v of violations) console.error(violationLine(v));
  if (violations.length > 0) {
    console.error(`check_imports: ${violations.length} import(s) against CONTRIBUTING.md's direction`);
    Deno.exit(1);
  }
}
