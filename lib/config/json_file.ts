/**
 * Reading a JSON config file into a case-insensitive key map, with one-line errors.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "../errors.ts";

/** A config problem: `joold: <file>: "<field>": <problem>, got <value>; <remedy>`. */
export class ConfigError extends JooldError {
  /**
   * A one-line configuration error (exit status 3).
   * @param file the file's path as given
   * @param field the JSON key, or undefined for whole-file problems
   * @param problem what is wrong
   * @param got the offending value (already rendered), or undefined
   * @param remedy what to do
   */
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    problem: string,
    got: string | undefined,
    remedy: string,
    options?: ErrorOptions,
  ) {
    const where = field === undefined ? file : `${file}: "${field}"`;
    const value = got === undefined ? "" : `, got ${got}`;
    super(EXIT.CONFIG, oneLine(`${where}: ${problem}${value}; ${remedy}`), options);
    this.name = "ConfigError";
  }
}

/**
 * Escapes line breaks and other control characters (a key, a file name or V8's quote of the broken JSON may hold
 * them), so that an error stays one line.
 */
function oneLine(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** Renders a JSON value for an error message, shortened to stay on one line. */
export function showValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  const flat = text.replace(/[\r\n\t]/g, " ");
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

/** A parsed config object whose keys were folded to lower case, as upstream matches them. */
export interface ConfigObject {
  /** Path of the file. */
  readonly file: string;
  /** Values by lower-cased key. */
  readonly values: Map<string, { key: string; value: unknown }>;
}

/**
 * Parses a file's text as a JSON object with case-insensitive keys.
 * Throws {@link ConfigError} on syntax errors (with line and column), non-objects and duplicate keys.
 */
export function parseConfigText(file: string, text: string): ConfigObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof SyntaxError ? cause.message : String(cause);
    throw new ConfigError(
      file,
      undefined,
      `invalid JSON at ${jsonErrorPlace(text, detail)}`,
      undefined,
      "fix the syntax",
      {
        cause,
      },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      file,
      undefined,
      "the file must hold one JSON object",
      showValue(parsed),
      'write it as { "key": value, ... }',
    );
  }
  const values = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(parsed)) {
    const folded = key.toLowerCase();
    const previous = values.get(folded);
    if (previous) {
      throw new ConfigError(
        file,
        key,
        `the key is given twice (keys are case-insensitive; also "${previous.key}")`,
        showValue(value),
        "keep one of them",
      );
    }
    values.set(folded, { key, value });
  }
  return { file, values };
}

/** "line L column C" for a V8 JSON.parse message, computed from its position when V8 gives only that. */
function jsonErrorPlace(text: string, message: string): string {
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  const position = /position (\d+)/.exec(message);
  let where: string;
  if (lineCol) where = `line ${lineCol[1]} column ${lineCol[2]}`;
  else if (position) {
    const offset = Number(position[1]);
    const before = text.slice(0, offset).split("\n");
    where = `line ${before.length} column ${before[before.length - 1].length + 1}`;
  } else {
    const lines = text.split("\n");
    where = `line ${lines.length} column ${lines[lines.length - 1].length + 1}`;
  }
  const reason = message.replace(/\s*\(line \d+ column \d+\)/, "").replace(/ in JSON at position \d+/, "")
    .replace(/^JSON\.parse: /, "");
  return `${where} (${reason})`;
}

/**
 * Reads a config file. Throws {@link ConfigError} naming the file when it is missing or unreadable.
 * @param argumentHint how the user names this file, for the remedy text
 */
export async function readConfigFile(file: string, argumentHint: string): Promise<ConfigObject> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        file,
        undefined,
        "no such file",
        undefined,
        `create it or pass its path as ${argumentHint}`,
        {
          cause,
        },
      );
    }
    if (cause instanceof Deno.errors.PermissionDenied || cause instanceof Deno.errors.NotCapable) {
      throw new ConfigError(
        file,
        undefined,
        "cannot read the file (permission denied)",
        undefined,
        "make it readable",
        {
          cause,
        },
      );
    }
    if (cause instanceof Deno.errors.IsADirectory) {
      throw new ConfigError(
        file,
        undefined,
        "this is a directory",
        undefined,
        `pass the file's path as ${argumentHint}`,
        {
          cause,
        },
      );
    }
    if (cause instanceof TypeError || cause instanceof Deno.errors.InvalidData) {
      throw new ConfigError(
        file,
        undefined,
        "the file is not UTF-8 text",
        undefined,
        "save it as UTF-8 JSON",
        { cause },
      );
    }
    const detail = errorMessage(cause);
    throw new ConfigError(file, undefined, `cannot read the file (${detail})`, undefined, "check the path", {
      cause,
    });
  }
  return parseConfigText(file, text);
}
