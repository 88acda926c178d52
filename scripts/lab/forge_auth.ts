/**
 * The VM lab's attacker against authenticated routers (case `hostile-auth`, scripts/lab/guest/cases.sh): the
 * routers share a `"key file"` the attacker does not have. Each datagram is labelled with the drop reason the
 * receiver must count it under, so the test compares B's counters with what was sent, reason by reason.
 *
 * Phase `forge` sends, to GROUP:PORT:
 * - every datagram of the plain hostile set (scripts/lab/hostile.ts): without a frame, `net_auth_missing`
 *   (the oversize ones are dropped before that, `net_oversize`);
 * - plausible sessions (scripts/lab/forge_pool4.ts: one inside the routers' pool4, one outside), plain:
 *   `net_auth_missing`;
 * - the same in a DATA frame without authentication: `net_auth_missing`;
 * - the same in a DATA frame sealed with a key of the attacker's own: `net_auth_bad`.
 *
 * Phase `replay` joins the group on interface IFINDEX, writes OUT.json.ready, captures the first N authentic
 * frames another router sends (the case drives traffic through A meanwhile) and sends each of them three times
 * more: `net_auth_replay` at every receiver, the frame's own sender included.
 *
 * `deno run --unstable-net --allow-net --allow-write forge_auth.ts forge FORMAT GROUP PORT OUT.json`
 * `deno run --unstable-net --allow-net --allow-write forge_auth.ts replay GROUP PORT IFINDEX N OUT.json`
 * Each writes `{sent, failed, byReason}` to OUT.json and prints one line.
 * @module
 */
import type { SessionFormat } from "../../lib/session/format.ts";
import { encodeData } from "../../lib/reliable/frame.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import type { DropReason } from "../../lib/stats.ts";
import { hostileDatagrams } from "./hostile.ts";
import { forgedDatagram } from "./forge_pool4.ts";

/** One datagram and the reason a keyed receiver must count it under. */
export interface ForgedDatagram {
  readonly reason: DropReason;
  readonly what: string;
  readonly bytes: Uint8Array;
}

/** The `forge` phase's datagrams for a receiver whose kernel speaks `format`, in sending order. */
export function forgedAgainstKey(format: SessionFormat): ForgedDatagram[] {
  const out: ForgedDatagram[] = hostileDatagrams(format).map((d) => ({
    reason: d.reason === "net_oversize" ? "net_oversize" : "net_auth_missing",
    what: `plain hostile: ${d.what}`,
    bytes: d.bytes,
  }));
  // A key of the attacker's own: the right layout, the wrong tag.
  const wrong = new Authenticator([crypto.getRandomValues(new Uint8Array(32))]);
  const sender = 0x0bad_f00d;
  for (let round = 11; round <= 13; round++) {
    const entries = forgedDatagram(format, round);
    out.push({
      reason: "net_auth_missing",
      what: `plausible sessions, plain (round ${round})`,
      bytes: entries,
    });
    out.push({
      reason: "net_auth_missing",
      what: `plausible sessions, framed without authentication (round ${round})`,
      bytes: encodeData(sender, round, entries),
    });
    out.push({
      reason: "net_auth_bad",
      what: `plausible sessions, sealed with the wrong key (round ${round})`,
      bytes: wrong.seal(encodeData(sender, round, entries)),
    });
  }
  return out;
}

/** How many times the replay phase sends each captured frame. */
const RESENDS = 3;

function tally(reasons: readonly DropReason[]): Record<string, number> {
  const byReason: Record<string, number> = {};
  for (const r of reasons) byReason[r] = (byReason[r] ?? 0) + 1;
  return byReason;
}

async function send(socket: Deno.DatagramConn, to: Deno.NetAddr, bytes: Uint8Array): Promise<boolean> {
  try {
    await socket.send(bytes, to);
  } catch (error) {
    console.error(`forge_auth: cannot send ${bytes.length} bytes: ${error}`);
    return false;
  }
  await new Promise((resolve) => setTimeout(resolve, 5)); // the receiver's socket buffer is not the test
  return true;
}

async function forge(format: SessionFormat, group: string, port: number, outFile: string): Promise<number> {
  const datagrams = forgedAgainstKey(format);
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: group.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  const to: Deno.NetAddr = { transport: "udp", hostname: group, port };
  let failed = 0;
  for (const d of datagrams) if (!await send(socket, to, d.bytes)) failed++;
  socket.close();
  const result = { sent: datagrams.length, failed, byReason: tally(datagrams.map((d) => d.reason)) };
  Deno.writeTextFileSync(outFile, JSON.stringify(result, null, 1) + "\n");
  console.log(`forge_auth: sent ${datagrams.length - failed} of ${datagrams.length} forged datagrams`);
  return failed === 0 ? 0 : 1;
}

async function replay(
  group: string,
  port: number,
  ifindex: number,
  count: number,
  outFile: string,
): Promise<number> {
  // Bound to the group's port like a router, so the group's datagrams reach this socket.
  const listener = Deno.listenDatagram({
    transport: "udp",
    hostname: group.includes(":") ? "::" : "0.0.0.0",
    port,
    reuseAddress: true,
  });
  if (group.includes(":")) await listener.joinMulticastV6(group, ifindex);
  else await listener.joinMulticastV4(group, "0.0.0.0");
  Deno.writeTextFileSync(`${outFile}.ready`, "listening\n"); // the case starts A's traffic now
  const captured: Uint8Array[] = [];
  const deadline = setTimeout(() => listener.close(), 60_000);
  try {
    while (captured.length < count) {
      const [datagram] = await listener.receive();
      captured.push(datagram.slice());
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error; // closed at the deadline
  } finally {
    clearTimeout(deadline);
  }
  try {
    listener.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error; // already closed at the deadline
  }
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: group.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  const to: Deno.NetAddr = { transport: "udp", hostname: group, port };
  let sent = 0, failed = 0;
  for (const bytes of captured) {
    for (let i = 0; i < RESENDS; i++) (await send(socket, to, bytes)) ? sent++ : failed++;
  }
  socket.close();
  const result = {
    captured: captured.length,
    sent,
    failed,
    byReason: tally(Array(sent).fill("net_auth_replay")),
  };
  Deno.writeTextFileSync(outFile, JSON.stringify(result, null, 1) + "\n");
  console.log(`forge_auth: captured ${captured.length} authentic frames, replayed ${sent} datagrams`);
  return captured.length === count && failed === 0 ? 0 : 1;
}

async function main(args: string[]): Promise<number> {
  const [phase, ...rest] = args;
  if (phase === "forge" && ["A", "B", "C"].includes(rest[0]) && Number(rest[2]) && rest[3]) {
    return await forge(rest[0] as SessionFormat, rest[1], Number(rest[2]), rest[3]);
  }
  if (phase === "replay" && rest[0] && Number(rest[1]) && Number(rest[3]) && rest[4]) {
    return await replay(rest[0], Number(rest[1]), Number(rest[2]), Number(rest[3]), rest[4]);
  }
  console.error(
    "usage: forge_auth.ts forge A|B|C GROUP PORT OUT.json | forge_auth.ts replay GROUP PORT IFINDEX N OUT.json",
  );
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
