/**
 * The daemon's lifecycle: open the kernel channel, the net channel and the stats server, relay until a signal,
 * then close everything within a second.
 * @module
 */
import { errorMessage, EXIT, JooldError } from "./errors.ts";
import { describeConfig, loadConfig } from "./config/load.ts";
import { KernelChannel } from "./kernel/channel.ts";
import type { KernelAccess, KernelTransport } from "./kernel/transport.ts";
import { formatFor, versionText } from "./kernel/version.ts";
import type { Logger } from "./logger.ts";
import { NetChannel } from "./net/channel.ts";
import { LibcHostLookup } from "./net/libc_host_lookup.ts";
import { Relay } from "./relay.ts";
import { DROP_REASONS, Stats } from "./stats.ts";
import { DEFAULT_STATS_ADDRESSES, StatsServer } from "./stats_server.ts";
import { SystemdNotifier } from "./systemd/notifier.ts";
import { runningStatus } from "./systemd/notify_protocol.ts";
import { upstreamWire, type WireCodec } from "./wire.ts";
import { ReliableSync } from "./reliable/sync.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { AuthenticatedWire, FramedDataWire, framedWireOverhead } from "./auth/wire.ts";
import { readKeyFile } from "./config/key_file.ts";
import type { AuthSettings } from "./config/types.ts";
import { warmUp } from "./warmup.ts";
import { Pool4Watch } from "./kernel/pool4_watch.ts";
import {
  batchFit,
  datagramLimit,
  DEFAULT_LINK_MTU,
  describeFit,
  fitSetting,
  linkText,
  packetPayloadLimit,
  type SyncLink,
} from "./net/packet_fit.ts";
import { interfaceMtuByName } from "../ffi/socket_options.ts";
import type { SessionFormat } from "./session/format.ts";

/** What the daemon runs with: the operator's files and stats port, and how it reaches its kernel. */
export interface DaemonOptions {
  /** netsocket.json (default ./netsocket.json). */
  readonly netFile?: string;
  /** modsocket.json (default ./modsocket.json; instance "default" when absent). */
  readonly modFile?: string;
  /** UDP port of the stats server; none when undefined. */
  readonly statsPort?: number;
  /** Addresses the stats server binds; undefined: {@link DEFAULT_STATS_ADDRESSES}. */
  readonly statsAddresses?: readonly string[];
}

/** How long a clean shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 800;

/** Validates the configuration and prints it (`--check`). Throws JooldError. */
export async function checkConfig(options: DaemonOptions, log: Logger): Promise<string> {
  const config = await loadConfig(options.netFile, options.modFile, new LibcHostLookup(), log);
  const text = describeConfig(config, options.statsPort, [
    ...(options.statsAddresses ?? DEFAULT_STATS_ADDRESSES),
  ]);
  // A framed wire: what fits one packet of the sync link (upstream's wire prints nothing new).
  const overhead = framedWireOverhead(config.net);
  if (overhead === 0) return text;
  const net = config.net;
  const name = net.outInterface?.name ?? net.inInterface?.name ?? net.scope?.name;
  const mtu = name === undefined ? undefined : interfaceMtuByName(name);
  const link: SyncLink = mtu
    ? { name, mtu, measured: true, family: net.family }
    : { name, mtu: DEFAULT_LINK_MTU, measured: false, family: net.family };
  return `${text}\n${describeFit(link, overhead)}`;
}

/**
 * Runs the daemon until SIGTERM/SIGINT. Resolves when everything is closed; throws JooldError on start-up
 * failures. A second signal exits at once. `kernel` opens the kernel side: libnl and the kernel thread in
 * production (`lib/kernel/libnl_transport.ts`), a double in tests. When systemd runs it as a `Type=notify`
 * service (`$NOTIFY_SOCKET`), it is told READY, the status, watchdog pings and STOPPING
 * (`lib/systemd/notifier.ts`).
 */
export async function runDaemon(options: DaemonOptions, kernel: KernelAccess, log: Logger): Promise<void> {
  // Listen for signals before anything else, so a SIGTERM during start-up also ends in a clean close.
  const signalled = waitForSignal(log);
  const notify = SystemdNotifier.fromEnvironment(log);
  try {
    await relayUntilSignal(options, kernel, log, signalled, notify);
  } catch (error) {
    notify.failed(error); // the one line main.ts prints, for `systemctl status`
    throw error;
  } finally {
    notify.close();
  }
}

/** {@link runDaemon}'s life from the configuration to the close; `notify` hears READY and STOPPING. */
async function relayUntilSignal(
  options: DaemonOptions,
  kernel: KernelAccess,
  log: Logger,
  signalled: Promise<void>,
  notify: SystemdNotifier,
): Promise<void> {
  const config = await loadConfig(options.netFile, options.modFile, new LibcHostLookup(), log);
  const stats = new Stats();

  const kernelVersion = kernel.readVersion();
  // Before the kernel socket joins the group: the main thread's first calls, compiled (lib/warmup.ts).
  const warm = await warmUp({
    instance: config.mod.instance,
    format: kernelVersion ? formatFor(kernelVersion) : undefined,
    version: kernelVersion,
    log,
  });
  log.debug(
    `warmed up in ${Math.round(warm.ms)} ms: ${warm.acks} ACKs, ${warm.datagrams} datagrams, ${warm.adds} ` +
      `JOOLD_ADDs to stand-ins, ${warm.loopbackDatagrams} loopback datagrams`,
  );

  // Kernel first, as upstream ≥4.1.13 does: "Jool is not loaded" is the most common start-up failure.
  const transport: KernelTransport = await kernel.open(config.mod.instance, kernelVersion, log);
  const closers: (() => void | Promise<void>)[] = [() => transport.close()];
  const closeAll = async () => {
    for (const close of [...closers].reverse()) await close();
  };
  try {
    const channel = await KernelChannel.open({
      instance: config.mod.instance,
      transport,
      stats,
      log,
      kernelVersion,
    });
    closers.push(() => channel.close());
    const pool4 = config.net.checkPool4
      ? await watchPool4(kernel, config.mod.instance, channel, stats, log)
      : undefined;
    if (pool4) closers.push(() => pool4.stop());
    const net = await NetChannel.open(config.net, { stats, log });
    closers.push(() => net.close());
    const sync = config.net.sync ?? { mode: "upstream" };
    const authSettings = config.net.auth;
    const auth = authSettings ? new Authenticator(keysOf(authSettings)) : undefined;
    const reliable = sync.mode === "reliable"
      ? new ReliableSync(sync, {
        stats,
        log,
        format: () => channel.format,
        authenticated: auth !== undefined,
        packetLimit: packetPayloadLimit(net.link),
      })
      : undefined;
    // A key implies the framed wire: the reliable mode's, or DATA frames alone in upstream mode.
    const codec: WireCodec = auth
      ? new AuthenticatedWire(reliable ?? new FramedDataWire(), auth)
      : reliable ?? upstreamWire;
    // SIGHUP re-reads the key files (`systemctl reload`); listened to even without a key, so a reload never
    // kills the daemon.
    const reload = () => reloadKeys(config.net.file, authSettings, auth, log);
    Deno.addSignalListener("SIGHUP", reload);
    closers.push(() => Deno.removeSignalListener("SIGHUP", reload));
    if (options.statsPort !== undefined) {
      const server = StatsServer.open({
        port: options.statsPort,
        addresses: [...(options.statsAddresses ?? DEFAULT_STATS_ADDRESSES)],
        defaultAddresses: options.statsAddresses === undefined,
        stats,
        log,
        describe: () => ({
          instance: config.mod.instance,
          kernelVersion: channel.kernelVersion ? versionText(channel.kernelVersion) : null,
          sessionFormat: channel.format ?? null,
          wire: codec.name,
          ...(pool4 ? { pool4Entries: pool4.table.entries } : {}),
          ...(reliable ? { reliable: reliable.status() } : {}),
          ...(auth ? { auth: auth.status() } : {}),
        }),
        prometheus: reliable ? () => reliable.prometheus() : undefined,
      });
      closers.push(() => server.close());
    }
    const peers = config.net.peers?.map((p) =>
      p.port === config.net.port ? p.address : `${p.address}:${p.port}`
    );
    const group = config.net.groupAddress === undefined
      ? `(none; peers ${peers!.join(", ")})`
      : `${config.net.groupAddress}${config.net.scope ? `%${config.net.scope.name}` : ""}${
        peers ? ` and peers ${peers.join(", ")}` : ""
      }`;
    log.info(`relaying instance "${config.mod.instance}" ⇄ group ${group} port ${config.net.port}`);
    // The reliable mode paces live sends to what its peers take (lib/reliable/pacing.ts).
    logLinkFit(net.link, codec, channel.format, config.mod.instance, log);
    const relay = new Relay(channel, reliable ? reliable.paced(net) : net, codec, stats, log, {
      pool4: pool4 && (() => pool4.table),
      link: net.link,
      instance: config.mod.instance,
    });
    closers.push(() => relay.stop());
    const relayDone = relay.run();
    if (reliable) {
      reliable.start({
        // Control frames and resends are sealed here, each with a new frame counter.
        send: (datagram, sessions) => net.send(auth ? auth.seal(datagram) : datagram, sessions),
        backlog: () => relay.backlog,
      });
      // Before the net channel closes: a replay in progress stops sending first.
      closers.push(() => reliable.stop());
    }
    // The Jool module unloaded under us: this socket can never hear the kernel again (lib/kernel/module_watch.ts).
    const kernelGone = new Promise<string>((resolve) => {
      const stop = kernel.watchGone?.(resolve, log);
      if (stop) closers.push(stop);
    });
    notify.ready(() =>
      runningStatus({
        instance: config.mod.instance,
        group,
        port: config.net.port,
        sentToGroup: stats.get("NET_SENT_PKTS"),
        sentToKernel: stats.get("KERNEL_SENT_PKTS"),
        dropped: DROP_REASONS.reduce((sum, reason) => sum + stats.drops(reason), 0),
      })
    );
    // The channels end only when closed, so the relay finishing (or failing) before a signal is a fault:
    // close everything and exit non-zero with one line rather than run half a daemon.
    const first = await Promise.race([
      signalled.then(() => "signal" as const),
      relayDone.then(() => "relay ended" as const, (error: unknown) => error),
      kernelGone.then((why) => new KernelGone(why)),
    ]);
    if (first instanceof KernelGone) {
      throw new JooldError(
        EXIT.JOOL_ABSENT,
        `the Jool module went away under the daemon: ${first.why}; its Generic Netlink family and multicast ` +
          "group went with it, so joold exits for its service manager to start it again",
      );
    }
    if (first !== "signal") {
      const reason = first === "relay ended"
        ? "a channel closed unexpectedly"
        : errorMessage(first).split("\n")[0];
      throw new JooldError(EXIT.RUNTIME, `relay stopped: ${reason}`, { cause: first });
    }
    notify.stopping();
    const shutdown = closeAll().then(() => relayDone);
    const timeout = new Promise<"timeout">((resolve) =>
      setTimeout(() => resolve("timeout"), SHUTDOWN_GRACE_MS)
    );
    if (await Promise.race([shutdown, timeout]) === "timeout") {
      log.warn("shutdown took too long; exiting anyway");
    } else log.info("stopped");
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * One line at start: the sync link's MTU and, on a framed wire, the largest batch that fits one packet once
 * framed (larger ones are cut: `lib/relay.ts`) and the Jool setting that keeps batches within it.
 */
function logLinkFit(
  link: SyncLink,
  codec: WireCodec,
  format: SessionFormat | undefined,
  instance: string,
  log: Logger,
): void {
  const packet = `sync link ${linkText(link)}: ${packetPayloadLimit(link)} bytes of UDP payload per packet`;
  if (codec.overhead === 0) {
    log.debug(packet);
    return;
  }
  const fit = format ? batchFit(link, codec.overhead, format) : undefined;
  log.info(
    `${packet}; the ${codec.name} wire adds ${codec.overhead} bytes to a batch, so a batch of more than ` +
      `${datagramLimit(link) - codec.overhead} bytes` +
      (fit && format ? ` (${fit.sessions} format-${format} sessions)` : "") +
      " is cut at a session boundary, its rest leading the next frame" +
      (fit && format ? `; to avoid that: ${fitSetting(instance, fit, format)}` : ""),
  );
}

/** `"check pool4"`: the first read of the local pool4 and its re-reads (`lib/kernel/pool4_watch.ts`). */
function watchPool4(
  kernel: KernelAccess,
  instance: string,
  channel: KernelChannel,
  stats: Stats,
  log: Logger,
): Promise<Pool4Watch> {
  if (!kernel.openQuerySocket) {
    throw new JooldError(EXIT.RUNTIME, '"check pool4" is on but this kernel access cannot read pool4');
  }
  return Pool4Watch.start({
    socket: kernel.openQuerySocket(),
    instance,
    version: channel.kernelVersion,
    stats,
    log,
  });
}

/** The keys an authenticator takes: "key file" first (it signs), then "second key file". */
function keysOf(settings: AuthSettings): Uint8Array[] {
  return [settings.keyFile.key, ...(settings.secondKeyFile ? [settings.secondKeyFile.key] : [])];
}

/** SIGHUP: reads the key files again; on any problem one error line, and the keys in use stay. */
async function reloadKeys(
  file: string,
  settings: AuthSettings | undefined,
  auth: Authenticator | undefined,
  log: Logger,
): Promise<void> {
  if (!settings || !auth) {
    log.info('SIGHUP received: no "key file" configured, nothing to reload');
    return;
  }
  try {
    const first = await readKeyFile(file, "key file", settings.keyFile.path);
    const second = settings.secondKeyFile
      ? await readKeyFile(file, "second key file", settings.secondKeyFile.path)
      : undefined;
    auth.setKeys([first.key, ...(second ? [second.key] : [])]);
    log.info(
      `SIGHUP received: keys reloaded (key file ${first.path}, ${first.key.length} bytes` +
        (second ? `; second key file ${second.path}, ${second.key.length} bytes)` : ")"),
    );
  } catch (error) {
    log.error(`SIGHUP received: keys not reloaded, the previous ones stay: ${errorMessage(error)}`);
  }
}

/** What {@link KernelAccess.watchGone} reported. */
class KernelGone {
  constructor(readonly why: string) {}
}

/** Resolves on the first SIGTERM/SIGINT; a second one exits at once. */
function waitForSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (name: string) => () => {
      if (received) Deno.exit(0);
      received = true;
      log.info(`${name} received; closing`);
      resolve();
    };
    Deno.addSignalListener("SIGTERM", handler("SIGTERM"));
    Deno.addSignalListener("SIGINT", handler("SIGINT"));
  });
}
