/**
 * Command line: `joold [netsocket.json] [modsocket.json] [stats-port]` plus options.
 * @module
 */
import { parseArgs } from "node:util";
import { errorMessage, EXIT, JooldError } from "./errors.ts";
import type { LogLevel } from "./logger.ts";
import { literalFamily } from "./config/addresses.ts";
import type { DaemonOptions } from "./daemon.ts";

/** What the command line asked for. */
export interface CliOptions extends DaemonOptions {
  /** What to do: run the daemon, print help or the version, or check the configuration. */
  readonly mode: "run" | "help" | "version" | "check";
  /** --stats-address values; undefined when none was given (the daemon's loopback default). */
  readonly statsAddresses?: string[];
  /** --log-level. */
  readonly logLevel: LogLevel;
  /** --syslog: log to syslog instead of stderr. */
  readonly syslog: boolean;
}

/** Usage text printed by `--help`. */
export const USAGE = `Usage: joold [OPTIONS] [NETSOCKET.json] [MODSOCKET.json] [STATS-PORT]

Relays Jool's session-sync batches between the local NAT64 instance and peer routers over UDP multicast.

Arguments:
  NETSOCKET.json   multicast socket configuration (default: ./netsocket.json)
  MODSOCKET.json   Jool instance configuration (default: ./modsocket.json; if absent, instance "default")
  STATS-PORT       UDP port of the stats server (1-65535); no stats server when omitted

Options:
  --check                 validate the files and the port, print the effective configuration, exit
  --log-level LEVEL       error, warn, info (default) or debug
  --syslog                log to syslog (ident joold, facility daemon) instead of stderr
  --stats-address ADDR    address the stats server binds (repeatable; default 127.0.0.1 and ::1)
  --version               print the version and exit
  --help                  print this help and exit

Stats: send any datagram to the stats port for the six counters; "json" or "prometheus" for every counter.
`;

/** Parses argv (without the program name). Throws JooldError(EXIT.USAGE) with a one-line message. */
export function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        check: { type: "boolean" },
        "log-level": { type: "string" },
        syslog: { type: "boolean" },
        "stats-address": { type: "string", multiple: true },
      },
    });
  } catch (cause) {
    const message = errorMessage(cause).split("\n")[0];
    throw new JooldError(EXIT.USAGE, `${message.replace(/\.$/, "")}; see joold --help`, { cause });
  }
  const { values, positionals } = parsed;
  if (positionals.length > 3) {
    throw new JooldError(
      EXIT.USAGE,
      `too many arguments, got ${positionals.length} (${
        positionals.slice(3).map((p) => JSON.stringify(p)).join(" ")
      }); ` +
        "joold takes at most NETSOCKET.json MODSOCKET.json STATS-PORT",
    );
  }
  const logLevel = values["log-level"] ?? "info";
  if (!["error", "warn", "info", "debug"].includes(logLevel)) {
    throw new JooldError(
      EXIT.USAGE,
      `--log-level: unknown level, got ${JSON.stringify(logLevel)}; use error, warn, info or debug`,
    );
  }
  const statsPort = positionals[2] === undefined ? undefined : parseStatsPort(positionals[2]);
  const statsAddresses = values["stats-address"];
  for (const address of statsAddresses ?? []) {
    if (literalFamily(address) === undefined) {
      throw new JooldError(
        EXIT.USAGE,
        `--stats-address: not an IP address, got ${
          JSON.stringify(address)
        }; use e.g. 127.0.0.1, ::1, 0.0.0.0 or ::`,
      );
    }
  }
  const mode = values.help ? "help" : values.version ? "version" : values.check ? "check" : "run";
  return {
    mode,
    netFile: positionals[0],
    modFile: positionals[1],
    statsPort,
    statsAddresses,
    logLevel: logLevel as LogLevel,
    syslog: values.syslog ?? false,
  };
}

/** Validates the third argument. */
export function parseStatsPort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new JooldError(
      EXIT.USAGE,
      `stats port (third argument): not a port number, got ${
        JSON.stringify(text)
      }; use a number from 1 to 65535`,
    );
  }
  return Number(text);
}
