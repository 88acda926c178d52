/**
 * Loads both config files the way upstream's documentation describes: defaults in the working directory, the module socket file
 * optional when it was not named.
 * @module
 */
import type { Logger } from "../logger.ts";
import type { HostLookup } from "../net/host_lookup.ts";
import { readConfigFile } from "./json_file.ts";
import { DEFAULT_INSTANCE, validateModSocket } from "./modsocket.ts";
import { validateNetSocket } from "./netsocket.ts";
import type { ModSocketConfig, NetSocketConfig } from "./types.ts";
import { FRESHNESS_MS } from "../auth/authenticator.ts";

/** Default file names, relative to the working directory (upstream's). */
export const DEFAULT_NETSOCKET_FILE = "netsocket.json";
/** Default module socket file name. */
export const DEFAULT_MODSOCKET_FILE = "modsocket.json";

/** Both configurations. */
export interface DaemonConfig {
  /** The validated netsocket.json. */
  readonly net: NetSocketConfig;
  /** The validated modsocket.json. */
  readonly mod: ModSocketConfig;
}

/**
 * Reads and validates both files. `netFile`/`modFile` undefined mean the defaults; a missing default
 * modsocket.json means instance "default" (logged at info level), a missing named one is an error.
 */
export async function loadConfig(
  netFile: string | undefined,
  modFile: string | undefined,
  lookup: HostLookup,
  log: Logger,
): Promise<DaemonConfig> {
  const netRaw = await readConfigFile(netFile ?? DEFAULT_NETSOCKET_FILE, "the first argument");
  const net = await validateNetSocket(netRaw, lookup, log);
  let mod: ModSocketConfig;
  if (modFile === undefined && !(await exists(DEFAULT_MODSOCKET_FILE))) {
    log.info(
      `${DEFAULT_MODSOCKET_FILE} not found in the working directory; serving instance "${DEFAULT_INSTANCE}"`,
    );
    mod = { instance: DEFAULT_INSTANCE };
  } else {
    mod = validateModSocket(
      await readConfigFile(modFile ?? DEFAULT_MODSOCKET_FILE, "the second argument"),
      log,
    );
  }
  return { net, mod };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The effective configuration as printed by `--check` (one `key: value` per line). */
export function describeConfig(
  config: DaemonConfig,
  statsPort: number | undefined,
  statsAddresses: string[],
): string {
  const { net, mod } = config;
  const sync = net.sync ?? { mode: "upstream" };
  const iface = (ref: NetSocketConfig["inInterface"]) =>
    ref === undefined
      ? "(kernel's choice)"
      : ref.address !== undefined
      ? `${ref.address}${ref.name ? ` (${ref.name})` : ""}`
      : `${ref.name} (index ${ref.index})`;
  const lines = [
    `netsocket file: ${net.file}`,
    `multicast address: ${net.groupAddress ?? "(none: unicast peers only)"}${
      net.scope ? `%${net.scope.name} (index ${net.scope.index})` : ""
    }`,
    `family: IPv${net.family}`,
    `multicast port: ${net.port}`,
    `in interface: ${iface(net.inInterface)}`,
    `out interface: ${iface(net.outInterface)}`,
    `reuseaddr: ${net.reuseaddr}`,
    `ttl: ${net.ttl}`,
    // Printed only when set, so --check of a configuration without them reads as before.
    ...(net.acceptFrom
      ? [
        `accept from: ${net.acceptFrom.map((p) => p.text).join(", ")}${
          net.inInterface ? " (through the in interface only)" : ""
        }`,
      ]
      : []),
    ...(net.peers ? [`peers: ${net.peers.map((p) => hostPort(p.address, p.port)).join(", ")}`] : []),
    `mode: ${sync.mode}`,
    ...(sync.mode === "reliable"
      ? [
        `track file: ${sync.trackFile ?? "(none)"}`,
        `track weight: ${sync.trackWeight}`,
        `heartbeat interval: ${sync.heartbeatMs} ms`,
        `resend buffer: ${sync.resendBuffer} datagrams`,
        `session cache: ${sync.sessionCache} sessions`,
        `replay rate: ${sync.replayRate} datagrams/s`,
      ]
      : []),
    `check pool4: ${net.checkPool4 ? 1 : 0}`,
    ...(net.auth
      ? [
        `key file: ${net.auth.keyFile.path} (${net.auth.keyFile.key.length} bytes)`,
        `second key file: ${
          net.auth.secondKeyFile
            ? `${net.auth.secondKeyFile.path} (${net.auth.secondKeyFile.key.length} bytes)`
            : "(none)"
        }`,
        `authentication: HMAC-SHA-256 on every frame (${
          sync.mode === "reliable" ? "reliable mode" : "framed data, no recovery"
        }), replay window, timestamps within ±${FRESHNESS_MS / 1000} s`,
      ]
      : []),
    `modsocket file: ${mod.file ?? "(absent, default used)"}`,
    `instance: ${mod.instance}`,
    `stats server: ${
      statsPort === undefined ? "off" : statsAddresses.map((a) => hostPort(a, statsPort)).join(", ")
    }`,
  ];
  return lines.join("\n");
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
