/**
 * Test helper run INSIDE a network namespace: one half of an impaired multicast link, for kernels without
 * `sch_netem` (`tc qdisc … netem` fails with "Specified qdisc kind is unknown" there).
 *
 * Two forwarders, one in each of two middle namespaces joined by a unicast veth, stand between two daemons:
 * each joins the sync group on its daemon's side (a {@link NetChannel}) and sends what it receives there to the
 * other forwarder by unicast — dropping, duplicating and delaying (so reordering) datagrams at the given rates
 * with a seeded generator — and multicasts what it receives from the other forwarder to its daemon's side,
 * unchanged. So A → B is impaired by A's forwarder, B → A by B's.
 *
 * Argument: JSON `{ net: NetSocketConfig, bind: {hostname, port}, peer: {hostname, port}, loss, duplicate,
 * reorder, reorderMs, seed }` (rates 0–1). stdout: `ready`, then `counts <json>` on request. stdin: `cut 1`
 * (drop everything outbound: a cut link), `cut 0`, `counts`, `quit`.
 * @module
 */
import { stdinCommands } from "../helpers/stdin_commands.ts";
import type { NetSocketConfig } from "../../lib/config/types.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { NetChannel } from "../../lib/net/channel.ts";
import { Stats } from "../../lib/stats.ts";

interface ForwarderOptions {
  net: NetSocketConfig;
  bind: { hostname: string; port: number };
  peer: { hostname: string; port: number };
  loss: number;
  duplicate: number;
  reorder: number;
  reorderMs: number;
  seed: number;
}

const encoder = new TextEncoder();
function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`${line}\n`));
}

const options = JSON.parse(Deno.args[0]) as ForwarderOptions;
let seed = options.seed >>> 0 || 1;
/** xorshift32 in [0, 1): the same impairments for the same seed. */
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

const channel = await NetChannel.open(options.net, { stats: new Stats(), log: new MemoryLogger() });
const unicast = Deno.listenDatagram({ transport: "udp", ...options.bind });
const peer: Deno.NetAddr = { transport: "udp", ...options.peer };
const counts = { forwarded: 0, dropped: 0, duplicated: 0, delayed: 0, cut: 0, delivered: 0 };
let cut = false;
say("ready");

const send = (datagram: Uint8Array) => unicast.send(datagram, peer).catch(() => {/* the peer is gone */});

const outbound = (async () => {
  for await (const view of channel.receive()) {
    if (cut) {
      counts.cut++;
      continue;
    }
    if (random() < options.loss) {
      counts.dropped++;
      continue;
    }
    const datagram = view.slice();
    const copies = random() < options.duplicate ? 2 : 1;
    if (copies === 2) counts.duplicated++;
    for (let i = 0; i < copies; i++) {
      counts.forwarded++;
      if (random() < options.reorder) {
        counts.delayed++;
        setTimeout(() => send(datagram), options.reorderMs);
      } else await send(datagram);
    }
  }
})();

const inbound = (async () => {
  const buffer = new Uint8Array(65536);
  while (true) {
    let datagram: Uint8Array;
    try {
      [datagram] = await unicast.receive(buffer);
    } catch {
      return; // closed
    }
    counts.delivered++;
    await channel.send(datagram.slice());
  }
})();

for await (const { command, argument } of stdinCommands()) {
  if (command === "cut") cut = argument === "1";
  else if (command === "counts") say(`counts ${JSON.stringify(counts)}`);
  else if (command === "quit") break;
  say(`done ${command}`);
}
channel.close();
unicast.close();
await Promise.allSettled([outbound, inbound]);
Deno.exit(0);
