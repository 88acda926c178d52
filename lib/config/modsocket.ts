/**
 * modsocket.json: which Jool instance this daemon serves.
 * @module
 */
import type { Logger } from "../logger.ts";
import { ConfigError, type ConfigObject, showValue } from "./json_file.ts";
import type { ModSocketConfig } from "./types.ts";

/** The instance upstream uses when none is named. */
export const DEFAULT_INSTANCE = "default";

/** Validates a parsed modsocket.json. Throws {@link ConfigError}. */
export function validateModSocket(config: ConfigObject, log: Logger): ModSocketConfig {
  const { file, values } = config;
  for (const { key } of values.values()) {
    if (key.toLowerCase() !== "instance") {
      log.warn(`${file}: unknown key "${key}" ignored; the only key is "instance"`);
    }
  }
  const entry = values.get("instance");
  if (!entry) return { file, instance: DEFAULT_INSTANCE };
  return { file, instance: validateInstanceName(file, entry.key, entry.value) };
}

/**
 * Checks an instance name: 1–15 bytes of printable ASCII (Jool's INAME_MAX_SIZE is 16 with the NUL).
 * Throws {@link ConfigError}.
 */
export function validateInstanceName(file: string, key: string, value: unknown): string {
  const remedy =
    'use the name given to `jool instance add` (1–15 printable ASCII characters), e.g. "default"';
  if (typeof value !== "string") {
    throw new ConfigError(file, key, "must be a string", showValue(value), remedy);
  }
  if (value.length === 0) throw new ConfigError(file, key, "must not be empty", showValue(value), remedy);
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new ConfigError(file, key, "only printable ASCII characters are allowed", showValue(value), remedy);
  }
  if (value.length > 15) {
    throw new ConfigError(file, key, "longer than 15 characters", showValue(value), remedy);
  }
  return value;
}
