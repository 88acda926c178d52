/**
 * Test helper run INSIDE a network namespace (`ip netns exec NS deno run … channel_peer.ts CONFIG_JSON`):
 * opens a {@link NetChannel} with the given NetSocketConfig and speaks a line protocol.
 *
 * stdout: `ready <descriptor>` once open; `recv <hex>` per datagram yielded; `sent <true|false>` per send;
 * `stats <json>` on request; `error <exit code> <message>` if open fails (then exits with that code).
 * stdin: `send <hex>`, `stats`, `quit` (or EOF).
 * @module
 */
import { stdinCommands } from "../helpers/stdin_commands.ts";
import type { NetSocketConfig } from "../../lib/config/types.ts";
import { JooldError } from "../../lib/errors.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { NetChannel } from "../../lib/net/channel.ts";
import { Stats } from "../../lib/stats.ts";

const encoder = new TextEncoder();
function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`${line}\n`));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

const config = JSON.parse(Deno.args[0]) as NetSocketConfig;
const stats = new Stats();
const log = new MemoryLogger();
let channel: NetChannel;
try {
  channel = await NetChannel.open(config, { stats, log });
} catch (error) {
  if (!(error instanceof JooldError)) throw error;
  say(`error ${error.exitCode} ${error.message}`);
  Deno.exit(error.exitCode);
}
say(`ready ${channel.descriptor}`);

const receiving = (async () => {
  for await (const datagram of channel.receive()) say(`recv ${hex(datagram)}`);
})();

for await (const { command, argument } of stdinCommands()) {
  if (command === "send") say(`sent ${await channel.send(unhex(argument ?? ""))}`);
  else if (command === "stats") say(`stats ${JSON.stringify({ ...stats.snapshot(), log: log.lines })}`);
  else if (command === "quit") break;
}
channel.close();
await receiving;
Deno.exit(0);
