/**
 * netsocket.json: the multicast socket's configuration (upstream's "Network Socket Configuration File"; docs/protocol.md §6.2).
 * Keys match case-insensitively, like upstream; unknown keys are warned about by name.
 * @module
 */
import { errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { HostLookup } from "../net/host_lookup.ts";
import { ConfigError, type ConfigObject, showValue } from "./json_file.ts";
import { isMulticast, literalFamily, needsScope, parseIPv4 } from "./addresses.ts";
import { isPrefix, parsePrefix, prefixText } from "../net/ingress.ts";
import { addressBytes, addressText } from "../net/address.ts";
import type {
  AddressPrefix,
  AuthSettings,
  InterfaceRef,
  NetSocketConfig,
  PeerAddress,
  SyncMode,
} from "./types.ts";
import { readKeyFile } from "./key_file.ts";

/** Every key the file may hold (lower case). */
export const NETSOCKET_KEYS = [
  "multicast address",
  "multicast port",
  "in interface",
  "out interface",
  "reuseaddr",
  "ttl",
  // The reliable mode (docs/protocol.md §10); the defaults are in RELIABLE_DEFAULTS.
  "mode",
  "track file",
  "track weight",
  "heartbeat interval",
  "resend buffer",
  "session cache",
  "replay rate",
  // The pool4 check (docs/protocol.md §11): 0 or 1, default 0.
  "check pool4",
  // Authentication (docs/protocol.md §10.6).
  "key file",
  "second key file",
  // Ingress filtering and unicast peers (docs/protocol.md §12).
  "accept from",
  "peers",
] as const;

/** The reliable mode's keys other than "mode", with their defaults and ranges. */
export const RELIABLE_DEFAULTS = {
  "track weight": { value: -50, min: -253, max: -1 },
  "heartbeat interval": { value: 1000, min: 100, max: 60_000 },
  "resend buffer": { value: 4096, min: 64, max: 1_000_000 },
  "session cache": { value: 1_000_000, min: 1, max: 100_000_000 },
  "replay rate": { value: 2000, min: 10, max: 1_000_000 },
} as const;

/**
 * Validates a parsed netsocket.json and resolves names (host, service, interfaces).
 * Throws {@link ConfigError}; logs warnings for unknown keys and for `reuseaddr` 0.
 */
export async function validateNetSocket(
  config: ConfigObject,
  lookup: HostLookup,
  log: Logger,
): Promise<NetSocketConfig> {
  const { file, values } = config;
  for (const { key } of values.values()) {
    if (!(NETSOCKET_KEYS as readonly string[]).includes(key.toLowerCase())) {
      log.warn(
        `${file}: unknown key "${key}" ignored; the keys are ${
          NETSOCKET_KEYS.map((k) => `"${k}"`).join(", ")
        }`,
      );
    }
  }

  // multicast address: mandatory unless unicast "peers" replace the group.
  const addressEntry = values.get("multicast address");
  const peersEntry = values.get("peers");
  const unicastOnly = peersEntry !== undefined && peersEntry.value !== null &&
    (addressEntry === undefined || addressEntry.value === null);
  if (!addressEntry && !unicastOnly) {
    throw new ConfigError(
      file,
      "multicast address",
      "the field is mandatory",
      "nothing",
      'add e.g. "ff08::db8:64:64", or list unicast "peers"',
    );
  }
  const peerList = peersEntry === undefined || peersEntry.value === null
    ? undefined
    : parsePeerList(file, peersEntry);
  const group = unicastOnly ? undefined : await groupField(file, addressEntry!, lookup);
  const family = group?.family ?? peerList![0].family;
  const groupAddress = group?.groupAddress;
  const scope = group?.scope;

  // multicast port
  const portEntry = values.get("multicast port");
  if (!portEntry) {
    throw new ConfigError(file, "multicast port", "the field is mandatory", "nothing", 'add e.g. "6464"');
  }
  const port = parsePort(file, portEntry.key, portEntry.value, lookup);

  const inInterface = interfaceField(file, values.get("in interface"), family, lookup);
  const outInterface = interfaceField(file, values.get("out interface"), family, lookup);

  const reuseEntry = values.get("reuseaddr");
  const reuseaddr = reuseEntry ? requireInteger(file, reuseEntry.key, reuseEntry.value, 0, 2 ** 31 - 1) : 0;
  if (reuseaddr === 0) {
    log.warn(
      `${file}: "reuseaddr" is ${
        reuseEntry ? "0" : "absent (default 0)"
      }; a hung joold will hold the group's port: set "reuseaddr": 1`,
    );
  }
  const ttlEntry = values.get("ttl");
  const ttl = ttlEntry ? requireInteger(file, ttlEntry.key, ttlEntry.value, 0, 255) : 1;

  const sync = syncMode(file, values);
  const checkEntry = values.get("check pool4");
  const checkPool4 = checkEntry ? requireInteger(file, checkEntry.key, checkEntry.value, 0, 1) === 1 : false;
  const auth = await authSettings(file, values);
  const acceptFrom = acceptFromField(file, values.get("accept from"), family);
  const peers = peerList && peersField(file, peersEntry!.key, peerList, family, port, group !== undefined);
  if (peers && !acceptFrom) {
    log.warn(
      `${file}: "peers" without "accept from": the socket binds the wildcard address to hear the peers, so any host that reaches port ${port} is heard; list the peers in "accept from"`,
    );
  }

  return {
    file,
    ...(groupAddress === undefined ? {} : { groupAddress }),
    family,
    scope,
    port,
    inInterface,
    outInterface,
    reuseaddr,
    ttl,
    sync,
    checkPool4,
    ...(auth ? { auth } : {}),
    ...(acceptFrom ? { acceptFrom } : {}),
    ...(peers ? { peers } : {}),
  };
}

/** `"key file"` and `"second key file"`: both read and checked now; undefined when no key is configured. */
async function authSettings(file: string, values: ConfigObject["values"]): Promise<AuthSettings | undefined> {
  const first = values.get("key file");
  const second = values.get("second key file");
  if (first === undefined || first.value === null) {
    if (second !== undefined && second.value !== null) {
      throw new ConfigError(
        file,
        second.key,
        'a second accepted key, but no "key file"',
        showValue(second.value),
        'add "key file" (the key this daemon signs with), or remove the key',
      );
    }
    return undefined;
  }
  const path = (entry: NonNullable<typeof first>) =>
    requireString(file, entry.key, entry.value, '"/etc/joold/sync.key"');
  const keyFile = await readKeyFile(file, first.key, path(first));
  if (second === undefined || second.value === null) return { keyFile };
  return { keyFile, secondKeyFile: await readKeyFile(file, second.key, path(second)) };
}

/** `"multicast address"`: a literal or a host name resolving to a multicast group, with its scope if any. */
async function groupField(
  file: string,
  addressEntry: { key: string; value: unknown },
  lookup: HostLookup,
): Promise<{ groupAddress: string; family: 4 | 6; scope: NetSocketConfig["scope"] }> {
  const addressText = requireString(
    file,
    addressEntry.key,
    addressEntry.value,
    '"233.252.0.64" or "ff08::db8:64:64"',
  );
  const [hostPart, scopeName] = splitScope(addressText);
  let groupAddress: string;
  const literal = literalFamily(hostPart);
  if (literal) {
    groupAddress = hostPart;
  } else {
    if (!/^[A-Za-z0-9.-]+$/.test(hostPart)) {
      throw new ConfigError(
        file,
        addressEntry.key,
        "not an IPv4/IPv6 address or host name",
        showValue(addressText),
        "write a multicast address such as 233.252.0.64 or ff08::db8:64:64",
      );
    }
    let resolved: string[];
    try {
      resolved = await lookup.resolveHost(hostPart);
    } catch (cause) {
      throw new ConfigError(
        file,
        addressEntry.key,
        `cannot resolve the host name (${errorMessage(cause)})`,
        showValue(addressText),
        "write the group's address as a literal, or fix name resolution",
        { cause },
      );
    }
    const group = resolved.find((a) => isMulticast(a));
    if (!group) {
      const what = resolved.length === 0
        ? "the host name does not resolve"
        : `it resolves to ${resolved.join(", ")}`;
      throw new ConfigError(
        file,
        addressEntry.key,
        `${what}, not to a multicast address`,
        showValue(addressText),
        "write the multicast group's address",
      );
    }
    groupAddress = group;
  }
  const family = literalFamily(groupAddress)!;
  if (!isMulticast(groupAddress)) {
    throw new ConfigError(
      file,
      addressEntry.key,
      `not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 is ff00::/8)`,
      showValue(addressText),
      "use the sync group's address, e.g. 233.252.0.64 or ff08::db8:64:64",
    );
  }
  let scope: NetSocketConfig["scope"];
  if (scopeName !== undefined) {
    if (family === 4) {
      throw new ConfigError(
        file,
        addressEntry.key,
        "an IPv4 address takes no %interface suffix",
        showValue(addressText),
        `write "${hostPart}" and set "in interface"/"out interface"`,
      );
    }
    const index = lookup.interfaceIndex(scopeName);
    if (index === undefined) {
      throw new ConfigError(
        file,
        addressEntry.key,
        `no interface named "${scopeName}"`,
        showValue(addressText),
        `use an existing interface (${interfaceNames(lookup)})`,
      );
    }
    scope = { name: scopeName, index };
  } else if (needsScope(groupAddress)) {
    throw new ConfigError(
      file,
      addressEntry.key,
      "a link-local (or interface-local) group needs its interface",
      showValue(addressText),
      `write it as "${groupAddress}%eth0" with your sync interface's name`,
    );
  }

  return { groupAddress, family, scope };
}

/** `"accept from"`: a non-empty list of prefixes of the socket's family, host bits zero. */
function acceptFromField(
  file: string,
  entry: { key: string; value: unknown } | undefined,
  family: 4 | 6,
): AddressPrefix[] | undefined {
  if (entry === undefined || entry.value === null) return undefined;
  const example = family === 4 ? '["192.0.2.0/24"]' : '["2001:db8::/64"]';
  const list = requireList(file, entry.key, entry.value, example, "every datagram would be refused");
  const prefixes: AddressPrefix[] = [];
  for (const item of list) {
    if (typeof item !== "string") {
      throw new ConfigError(
        file,
        entry.key,
        "each item must be an address or prefix in quotes",
        showValue(item),
        `write e.g. ${example}`,
      );
    }
    const parsed = parsePrefix(item);
    if (!isPrefix(parsed)) {
      throw new ConfigError(
        file,
        entry.key,
        parsed.problem,
        showValue(item),
        parsed.suggestion
          ? `write "${parsed.suggestion}" for the network, or the bare address for one host`
          : `write an address ("192.0.2.2", "2001:db8::2") or a prefix ("192.0.2.0/24", "2001:db8::/64")`,
      );
    }
    if (parsed.family !== family) {
      throw new ConfigError(
        file,
        entry.key,
        `an IPv${parsed.family} prefix, but the sync socket is IPv${family}: it would never match`,
        showValue(item),
        `list the peers' IPv${family} addresses`,
      );
    }
    prefixes.push({ text: prefixText(parsed), ...parsed });
  }
  return prefixes;
}

/** A `"peers"` item: its address, family and the port if one was written. */
interface PeerItem {
  readonly text: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly port?: number;
}

/** `"peers"` items parsed one by one ("192.0.2.2", "192.0.2.2:6464", "2001:db8::2", "[2001:db8::2]:6464"). */
function parsePeerList(file: string, entry: { key: string; value: unknown }): PeerItem[] {
  const example = '["192.0.2.2", "[2001:db8::2]:6464"]';
  const list = requireList(file, entry.key, entry.value, example, "there would be no one to send to");
  const remedy =
    'write "192.0.2.2", "192.0.2.2:6464", "2001:db8::2" or "[2001:db8::2]:6464" (port defaults to "multicast port")';
  return list.map((item) => {
    if (typeof item !== "string") {
      throw new ConfigError(
        file,
        entry.key,
        "each peer must be an address in quotes",
        showValue(item),
        remedy,
      );
    }
    const match = /^\[([^\]]*)\](?::(\d+))?$/.exec(item) ?? /^([^:]*)(?::(\d+))?$/.exec(item) ??
      (literalFamily(item) === 6 ? [item, item] : null);
    const address = match?.[1] ?? "";
    const family = literalFamily(address);
    if (!match || family === undefined || (item.startsWith("[") && family !== 6)) {
      throw new ConfigError(
        file,
        entry.key,
        "not an IPv4/IPv6 address with an optional port",
        showValue(item),
        remedy,
      );
    }
    let port: number | undefined;
    if (match[2] !== undefined) {
      port = Number(match[2]);
      if (port < 1 || port > 65535) {
        throw new ConfigError(file, entry.key, "the port is not from 1 to 65535", showValue(item), remedy);
      }
    }
    return { text: item, address: addressText(addressBytes(address)!), family, port };
  });
}

/** `"peers"`: unicast, of the socket's family, reachable without a scope, no duplicates; ports defaulted. */
function peersField(
  file: string,
  key: string,
  items: readonly PeerItem[],
  family: 4 | 6,
  port: number,
  hasGroup: boolean,
): PeerAddress[] {
  const peers: PeerAddress[] = [];
  for (const item of items) {
    if (item.family !== family) {
      throw new ConfigError(
        file,
        key,
        hasGroup
          ? `an IPv${item.family} peer, but the multicast group is IPv${family}: one socket speaks one family`
          : `an IPv${item.family} peer, but the first peer is IPv${family}: one socket speaks one family`,
        showValue(item.text),
        `list IPv${family} addresses only`,
      );
    }
    const bytes = addressBytes(item.address)!;
    if (isMulticast(item.address) || bytes.every((b) => b === 0) || (family === 4 && bytes[0] === 255)) {
      throw new ConfigError(
        file,
        key,
        "not a unicast address",
        showValue(item.text),
        'put a group in "multicast address"; list each peer\'s own unicast address here',
      );
    }
    if (family === 6 && bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80) {
      throw new ConfigError(
        file,
        key,
        "a link-local peer needs an interface, which peers do not take",
        showValue(item.text),
        "use the peer's global or unique-local address",
      );
    }
    const peer = { address: item.address, port: item.port ?? port };
    if (peers.some((p) => p.address === peer.address && p.port === peer.port)) {
      throw new ConfigError(
        file,
        key,
        "a duplicate peer (every datagram would be sent to it twice)",
        showValue(item.text),
        "list each peer once",
      );
    }
    peers.push(peer);
  }
  return peers;
}

/** A non-empty JSON list. */
function requireList(file: string, key: string, value: unknown, example: string, ifEmpty: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new ConfigError(
      file,
      key,
      "must be a list",
      showValue(value),
      `write it in brackets, e.g. ${example}`,
    );
  }
  if (value.length === 0) {
    throw new ConfigError(
      file,
      key,
      `an empty list (${ifEmpty})`,
      showValue(value),
      `list at least one address, e.g. ${example}, or remove the key`,
    );
  }
  return value;
}

/** `"mode"` and the reliable mode's keys; a reliable key in upstream mode is an error (it would do nothing). */
function syncMode(file: string, values: ConfigObject["values"]): SyncMode {
  const modeEntry = values.get("mode");
  const mode = modeEntry === undefined
    ? "upstream"
    : requireString(file, modeEntry.key, modeEntry.value, '"upstream" or "reliable"');
  if (mode !== "upstream" && mode !== "reliable") {
    throw new ConfigError(
      file,
      modeEntry!.key,
      "unknown mode",
      showValue(mode),
      'write "upstream" (upstream joold\'s wire, the default) or "reliable" (every daemon of the group is this one)',
    );
  }
  const reliableKeys = ["track file", ...Object.keys(RELIABLE_DEFAULTS)];
  if (mode === "upstream") {
    const set = reliableKeys.map((k) => values.get(k)).find((entry) => entry !== undefined);
    if (set) {
      throw new ConfigError(
        file,
        set.key,
        'a reliable-mode setting, but "mode" is "upstream"',
        showValue(set.value),
        'set "mode": "reliable" on every daemon of the group, or remove the key',
      );
    }
    return { mode };
  }
  const number = (key: keyof typeof RELIABLE_DEFAULTS) => {
    const entry = values.get(key);
    const { value, min, max } = RELIABLE_DEFAULTS[key];
    return entry === undefined ? value : requireInteger(file, entry.key, entry.value, min, max);
  };
  const trackEntry = values.get("track file");
  let trackFile: string | undefined;
  if (trackEntry !== undefined && trackEntry.value !== null) {
    trackFile = requireString(file, trackEntry.key, trackEntry.value, '"/run/joold/in-sync"');
    if (trackFile.includes("\0") || trackFile.endsWith("/")) {
      throw new ConfigError(
        file,
        trackEntry.key,
        "not a file path",
        showValue(trackFile),
        'write the path of a file, e.g. "/run/joold/in-sync"',
      );
    }
    const directory = trackFile.includes("/") ? trackFile.slice(0, trackFile.lastIndexOf("/")) || "/" : ".";
    let isDirectory = false;
    try {
      isDirectory = Deno.statSync(directory).isDirectory;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (!isDirectory) {
      throw new ConfigError(
        file,
        trackEntry.key,
        `its directory ${directory} does not exist`,
        showValue(trackFile),
        "create the directory (e.g. /run/joold) or name a file in an existing one",
      );
    }
  }
  return {
    mode,
    trackFile,
    trackWeight: number("track weight"),
    heartbeatMs: number("heartbeat interval"),
    resendBuffer: number("resend buffer"),
    sessionCache: number("session cache"),
    replayRate: number("replay rate"),
  };
}

function splitScope(text: string): [string, string | undefined] {
  const at = text.indexOf("%");
  if (at < 0) return [text, undefined];
  return [text.slice(0, at), text.slice(at + 1)];
}

function requireString(file: string, key: string, value: unknown, example: string): string {
  if (typeof value !== "string") {
    throw new ConfigError(
      file,
      key,
      `must be a string`,
      showValue(value),
      `write it in quotes, e.g. ${example}`,
    );
  }
  if (value.trim() === "") {
    throw new ConfigError(file, key, "must not be empty", showValue(value), `write e.g. ${example}`);
  }
  return value;
}

function requireInteger(file: string, key: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new ConfigError(
      file,
      key,
      `must be a whole number from ${min} to ${max}`,
      showValue(value),
      "write a number without quotes",
    );
  }
  if (value < min || value > max) {
    throw new ConfigError(
      file,
      key,
      `out of range ${min}–${max}`,
      showValue(value),
      `pick a value from ${min} to ${max}`,
    );
  }
  return value;
}

function parsePort(file: string, key: string, value: unknown, lookup: HostLookup): number {
  const remedy = 'write a port number from 1 to 65535 (e.g. "6464") or a service name from /etc/services';
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      throw new ConfigError(file, key, "not a port number from 1 to 65535", showValue(value), remedy);
    }
    return value;
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(file, key, "must be a port number or a service name", showValue(value), remedy);
  }
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n < 1 || n > 65535) {
      throw new ConfigError(file, key, "not a port number from 1 to 65535", showValue(value), remedy);
    }
    return n;
  }
  const service = lookup.servicePort(value);
  if (service === undefined) {
    throw new ConfigError(file, key, "unknown UDP service name", showValue(value), remedy);
  }
  return service;
}

function interfaceField(
  file: string,
  entry: { key: string; value: unknown } | undefined,
  family: 4 | 6,
  lookup: HostLookup,
): InterfaceRef | undefined {
  if (!entry || entry.value === null) return undefined;
  const text = requireString(file, entry.key, entry.value, family === 4 ? '"192.0.2.1"' : '"eth0"');
  const addresses = lookup.interfaceAddresses();
  if (family === 4) {
    if (!parseIPv4(text)) {
      const byName = addresses.filter((a) => a.name === text && a.family === 4).map((a) => a.address);
      const hint = byName.length > 0
        ? `use one of ${text}'s IPv4 addresses (${byName.join(", ")})`
        : "use the IPv4 address of the local interface (upstream's convention for IPv4 groups)";
      throw new ConfigError(
        file,
        entry.key,
        "an IPv4 group takes an interface's IPv4 address",
        showValue(text),
        hint,
      );
    }
    const owner = addresses.find((a) => a.family === 4 && a.address === text);
    if (!owner) {
      const mine = addresses.filter((a) => a.family === 4).map((a) => `${a.address} (${a.name})`).join(", ");
      throw new ConfigError(
        file,
        entry.key,
        "no local interface has this address",
        showValue(text),
        `use an address of this host: ${mine || "none configured"}`,
      );
    }
    return { text, address: text, name: owner.name };
  }
  if (literalFamily(text) !== undefined) {
    const owner = addresses.find((a) => a.address === text);
    const hint = owner
      ? `use the interface's name ("${owner.name}")`
      : 'use the interface\'s name, e.g. "eth0"';
    throw new ConfigError(
      file,
      entry.key,
      "an IPv6 group takes an interface name, not an address",
      showValue(text),
      hint,
    );
  }
  const index = lookup.interfaceIndex(text);
  if (index === undefined) {
    throw new ConfigError(
      file,
      entry.key,
      "no such interface",
      showValue(text),
      `use an existing interface (${interfaceNames(lookup)})`,
    );
  }
  return { text, name: text, index };
}

function interfaceNames(lookup: HostLookup): string {
  const names = [...new Set(lookup.interfaceAddresses().map((a) => a.name))];
  return names.length > 0 ? names.join(", ") : "none found";
}
