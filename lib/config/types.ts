/**
 * The validated configuration the channels consume. Parsing and validation live in
 * `lib/config/netsocket.ts` and `lib/config/modsocket.ts`.
 * @module
 */

/** netsocket.json, validated and resolved. */
export interface NetSocketConfig {
  /** Path of the file it came from (for messages). */
  readonly file: string;
  /**
   * Multicast group as a literal address (host names already resolved), without any `%scope`. Undefined only
   * when `peers` is set and `"multicast address"` is absent or null: unicast only, no group joined.
   */
  readonly groupAddress?: string;
  /** 4 for an IPv4 group (or IPv4 peers), 6 for IPv6. */
  readonly family: 4 | 6;
  /** For a link-local IPv6 group (`ff02::x%eth0`): the scope interface name and index. */
  readonly scope?: { readonly name: string; readonly index: number };
  /** UDP port of the group. */
  readonly port: number;
  /**
   * `in interface`: IPv4 group → `address` is an address of a local interface (used in ip_mreq);
   * IPv6 group → `name`/`index` of an interface (used in ipv6_mreq). Absent: the kernel chooses.
   */
  readonly inInterface?: InterfaceRef;
  /** `out interface`: same convention; sets IP_MULTICAST_IF / IPV6_MULTICAST_IF. */
  readonly outInterface?: InterfaceRef;
  /** SO_REUSEADDR value (0 = off). */
  readonly reuseaddr: number;
  /** IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, 0–255. */
  readonly ttl: number;
  /**
   * `mode`: upstream's wire or the reliable mode between our own daemons, with its settings. The validator
   * always sets it; absent (a config built by hand) means upstream.
   */
  readonly sync?: SyncMode;
  /**
   * `"check pool4"`: drop sessions from the network whose IPv4 side is outside the local pool4
   * (docs/protocol.md §11). The validator always sets it; absent (a config built by hand) means off.
   */
  readonly checkPool4?: boolean;
  /** `"key file"` and `"second key file"`: the framed wire, every frame authenticated (docs/protocol.md §10.6). */
  readonly auth?: AuthSettings;
  /**
   * `"accept from"`: the only source prefixes whose datagrams are read (docs/protocol.md §12); absent = every
   * source. Never empty when present. All of the socket's family.
   */
  readonly acceptFrom?: readonly AddressPrefix[];
  /**
   * `"peers"`: unicast destinations every datagram also goes to (besides the group, if any); absent = the
   * group only. Never empty when present. All of the socket's family, none multicast, no duplicates.
   */
  readonly peers?: readonly PeerAddress[];
}

/** Authentication with pre-shared keys. */
export interface AuthSettings {
  /** `"key file"`: signs every frame sent; tried first on receive. */
  readonly keyFile: KeyFile;
  /** `"second key file"`: also accepted on receive (a rolling key change), never used to sign. */
  readonly secondKeyFile?: KeyFile;
}

/** A key file as read and checked (`lib/config/key_file.ts`). */
export interface KeyFile {
  /** Its path as configured. */
  readonly path: string;
  /** Its bytes: the key. */
  readonly key: Uint8Array;
}

/** An address prefix of `"accept from"` (host bits zero). */
export interface AddressPrefix {
  /** The config's text, normalized (e.g. "192.0.2.0/24", "2001:db8::2/128"). */
  readonly text: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Network address bytes (4 or 16). */
  readonly bytes: Uint8Array;
  /** Prefix length, 0–32 or 0–128. */
  readonly length: number;
}

/** A unicast peer of `"peers"`. */
export interface PeerAddress {
  /** Literal address without brackets or port. */
  readonly address: string;
  /** UDP port (default: `"multicast port"`). */
  readonly port: number;
}

/** The sync mode: upstream's plain datagrams, or framed, sequenced and resynced ones (docs/protocol.md §10). */
export type SyncMode = { readonly mode: "upstream" } | ReliableSettings;

/** The reliable mode's settings (netsocket.json keys in quotes). */
export interface ReliableSettings {
  /** `"mode": "reliable"`. */
  readonly mode: "reliable";
  /** `"track file"`: where keepalived's vrrp_track_file reads the in-sync weight; none when undefined. */
  readonly trackFile?: string;
  /** `"track weight"`: the value written while not in sync (negative, -253 … -1). */
  readonly trackWeight: number;
  /** `"heartbeat interval"`: ms between heartbeats; a peer unheard for 3.5 of them is gone. */
  readonly heartbeatMs: number;
  /** `"resend buffer"`: datagrams kept for NACKs. */
  readonly resendBuffer: number;
  /** `"session cache"`: sessions kept for replays, at most. */
  readonly sessionCache: number;
  /** `"replay rate"`: replay datagrams per second, at most. */
  readonly replayRate: number;
}

/** A local interface, as named in the config. */
export interface InterfaceRef {
  /** The config's text. */
  readonly text: string;
  /** Interface name (IPv6 configs, and IPv4 ones when the address was matched to an interface). */
  readonly name?: string;
  /** Interface index (IPv6 configs). */
  readonly index?: number;
  /** IPv4 address (IPv4 configs). */
  readonly address?: string;
}

/** modsocket.json, validated. */
export interface ModSocketConfig {
  /** Path of the file, or undefined when the default file was absent. */
  readonly file?: string;
  /** Jool instance name, 1–15 printable ASCII bytes. */
  readonly instance: string;
}
