/**
 * The VM lab's forger for the pool4 check (case `pool4`, scripts/lab/guest/cases.sh): one well-formed datagram
 * in the receiver's format with two plausible UDP sessions, c6 (2001:db8:6::10) → h4 (192.0.2.10#9001):
 *
 * - `inside`: masked as 198.51.100.1#(61500 + 10·ROUND + 1), inside the lab's pool4 (198.51.100.1 61001–65535);
 * - `outside`: masked as 198.51.100.2#(61500 + 10·ROUND + 2), an address the routers' pool4 does not hold.
 *
 * As a program, run in the attacker's network namespace:
 * `deno run --unstable-net --allow-net forge_pool4.ts FORMAT GROUP PORT ROUND` sends it to GROUP:PORT and prints
 * one line: the sessions' src4 ("sent inside=198.51.100.1:61511 outside=198.51.100.2:61512").
 * @module
 */
import { encodeEntry, type SessionEntry } from "../../lib/session/entries.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import { concatBytes } from "../../lib/jool/netlink.ts";

/** The two sessions of round `round`: [inside, outside]. */
export function forgedSessions(round: number): [SessionEntry, SessionEntry] {
  const session = (n: number, src4: number[]): SessionEntry => ({
    proto: 1, // UDP
    state: 0,
    timer: 0,
    expiration: 600_000,
    src6: Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10),
    src6Port: 40_000 + 10 * round + n,
    dst6: Uint8Array.of(0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 10), // 64:ff9b::192.0.2.10
    dst6Port: 9001,
    src4: Uint8Array.from(src4),
    src4Port: 61_500 + 10 * round + n,
    dst4: Uint8Array.of(192, 0, 2, 10),
    dst4Port: 9001,
  });
  return [session(1, [198, 51, 100, 1]), session(2, [198, 51, 100, 2])];
}

/** The datagram of round `round` in `format`. */
export function forgedDatagram(format: SessionFormat, round: number): Uint8Array {
  return concatBytes(forgedSessions(round).map((s) => encodeEntry(s, format)));
}

async function main(args: string[]): Promise<number> {
  const [format, group, port, round] = args;
  if (!["A", "B", "C"].includes(format) || !group || !Number(port) || !/^\d+$/.test(round ?? "")) {
    console.error("usage: forge_pool4.ts A|B|C GROUP PORT ROUND");
    return 2;
  }
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: group.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  await socket.send(forgedDatagram(format as SessionFormat, Number(round)), {
    transport: "udp",
    hostname: group,
    port: Number(port),
  });
  socket.close();
  const [inside, outside] = forgedSessions(Number(round));
  console.log(
    `sent inside=${inside.src4.join(".")}:${inside.src4Port} outside=${
      outside.src4.join(".")
    }:${outside.src4Port}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
