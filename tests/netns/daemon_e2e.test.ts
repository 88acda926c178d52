/**
 * End to end: the real daemon (main.ts) on both ends of a veth link, each in its own namespace, each with the
 * kernel double (`--kernel-double=4.1.13`: netlink frames on stdin/stdout, a frame = u32 BE length + one
 * netlink datagram).
 *
 * - A batch injected as a kernel multicast at A's double arrives at B's double inside a JOOLD_ADD whose
 *   session container is byte-identical to the multicast's (and vice versa), for IPv4, IPv6 and ff02 groups.
 * - Malformed datagrams sent to B (random bytes, a truncated entry, a foreign format, oversize, empty) are
 *   dropped and counted (stats `json` query inside the namespace) and never reach B's double.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "../helpers/daemon_process.ts";
import { Lab, type LineProcess, netnsTest, sh } from "./lab.ts";

/** Generic Netlink family id the double reports (any value works if the daemon takes it from the double). */
const FAMILY_ID = 0x22;
const JOOLD_ADD = 27;
const JOOLD_ACK = 29;
const KERNEL_VERSION = [4, 1, 13, 0];
const STATS_PORT = 46600;
/** The daemon runs only once the kernel double exists. */
const NEEDS = { files: [`${ROOT}lib/kernel/double.ts`, `${ROOT}lib/kernel/channel.ts`] };

// ---- netlink frames (spec §1.3, §1.6, §2.4), built independently of lib/ ---------------------------------

/** One format C (≥4.1.13) session entry, 40 bytes: a UDP session with documentation addresses. */
function formatCEntry(n: number): Uint8Array {
  const entry = new Uint8Array(40);
  const view = new DataView(entry.buffer);
  view.setUint16(0, 40, true);
  view.setUint16(2, 1, true);
  entry.set([0x20, 0x01, 0x0d, 0xb8], 4); // src6 2001:db8::n
  entry[19] = n & 0xff;
  entry.set([192, 0, 2, 1 + (n % 200)], 20); // src4
  entry.set([203, 0, 113, 1 + (n % 200)], 24); // dst4
  view.setUint32(28, 59_000 + n, false); // expiration ms
  view.setUint16(32, 1000 + n, false); // src6 port
  view.setUint16(34, 2000 + n, false); // src4 port
  view.setUint16(36, 53, false); // dst4 port
  view.setUint16(38, 1 << 5, false); // UDP, state 0, timer 0
  return entry;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A kernel multicast carrying `entries` for instance "default", framed for the double's stdin. */
function multicastFrame(entries: Uint8Array): Uint8Array {
  const length = 16 + 4 + 28 + 4 + entries.length;
  const message = new Uint8Array(length);
  const view = new DataView(message.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, FAMILY_ID, true);
  message.set([0, 2, 0, 0], 16); // genl cmd 0, version 2
  message.set(new TextEncoder().encode("jool"), 20);
  message.set(KERNEL_VERSION, 24);
  message[28] = 2; // NAT64
  message.set(new TextEncoder().encode("default"), 32);
  view.setUint16(48, 4 + entries.length, true);
  view.setUint16(50, 0x8007, true);
  message.set(entries, 52);
  const frame = new Uint8Array(4 + length);
  new DataView(frame.buffer).setUint32(0, length, false);
  frame.set(message, 4);
  return frame;
}

/** A netlink message the daemon sent to its double. */
interface SentMessage {
  readonly cmd: number;
  /** Payload of the session container attribute (JOOLD_ADD only). */
  readonly container?: Uint8Array;
}

function decodeSent(message: Uint8Array): SentMessage {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const cmd = message[16];
  if (cmd !== JOOLD_ADD || message.length < 52) return { cmd };
  const attrLength = view.getUint16(48, true);
  assertEquals(view.getUint16(50, true) & 0x3fff, 7, "JOOLD_ADD's attribute is SESSION_ENTRIES");
  return { cmd, container: message.slice(52, 48 + attrLength) };
}

// ---- the daemon process ------------------------------------------------------------------------------------

class Daemon {
  readonly messages: SentMessage[] = [];
  readonly log: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<unknown>;
  #wake: (() => void)[] = [];

  constructor(readonly ns: string, dir: string) {
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        DENO,
        "run",
        "--quiet",
        ...DAEMON_FLAGS,
        `${ROOT}main.ts`,
        "netsocket.json",
        "modsocket.json",
        String(STATS_PORT),
        "--kernel-double=4.1.13",
      ],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#done = Promise.all([this.#readFrames(), this.#readLog(), this.#child.status]);
  }

  async #readFrames(): Promise<void> {
    let pending: Uint8Array = new Uint8Array(0);
    for await (const chunk of this.#child.stdout) {
      pending = concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = new DataView(pending.buffer, pending.byteOffset).getUint32(0, false);
        if (pending.length < 4 + length) break;
        this.messages.push(decodeSent(pending.slice(4, 4 + length)));
        pending = pending.slice(4 + length);
      }
      this.#notify();
    }
  }

  async #readLog(): Promise<void> {
    let pending = "";
    for await (const text of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      this.log.push(...lines);
      this.#notify();
    }
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Waits for `condition`; fails with the daemon's log after the hang guard or if it exits. */
  async until(what: string, condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    let exited = false;
    this.#child.status.then(() => exited = true);
    while (!condition()) {
      if (exited || Date.now() > deadline) {
        throw new Error(
          `${this.ns}: ${exited ? "daemon exited" : "gave up"} waiting for ${what}; log:\n${
            this.log.join("\n")
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        timer = setTimeout(resolve, 500);
      });
      clearTimeout(timer);
    }
  }

  ready(): Promise<void> {
    return this.until("start-up", () => this.log.some((l) => l.includes("relaying instance")));
  }

  adds(): Uint8Array[] {
    return this.messages.filter((m) => m.cmd === JOOLD_ADD).map((m) => m.container!);
  }

  async inject(entries: Uint8Array): Promise<void> {
    await this.#stdin.write(multicastFrame(entries));
  }

  async stop(): Promise<void> {
    await this.#stdin.close().catch((error) => {
      if (!(error instanceof Deno.errors.BrokenPipe) && !(error instanceof TypeError)) throw error;
    });
    try {
      this.#child.kill("SIGTERM");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already exited
    }
    await this.#done;
  }
}

/** Asks the stats server inside `ns` for its `json` view. */
async function queryStats(
  ns: string,
): Promise<{ counters: Record<string, number>; drops: Record<string, number> }> {
  const script = `const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
await c.send(new TextEncoder().encode("json"), { transport: "udp", hostname: "127.0.0.1", port: ${STATS_PORT} });
const [d] = await c.receive(); console.log(new TextDecoder().decode(d)); c.close();`;
  const out = await sh("ip", "netns", "exec", ns, DENO, "eval", "--quiet", "--unstable-net", script);
  return JSON.parse(out);
}

interface Setup {
  label: string;
  addresses: { a: string; b: string };
  netsocket: (end: "a" | "b") => Record<string, unknown>;
}

const SETUPS: Setup[] = [
  {
    label: "IPv4 233.252.0.64",
    addresses: { a: "192.0.2.1/24", b: "192.0.2.2/24" },
    netsocket: (end) => ({
      "multicast address": "233.252.0.64",
      "in interface": end === "a" ? "192.0.2.1" : "192.0.2.2",
      "out interface": end === "a" ? "192.0.2.1" : "192.0.2.2",
    }),
  },
  {
    label: "IPv6 ff08::db8:64:64",
    addresses: { a: "2001:db8::1/64", b: "2001:db8::2/64" },
    netsocket: () => ({
      "multicast address": "ff08::db8:64:64",
      "in interface": "eth0",
      "out interface": "eth0",
    }),
  },
  {
    label: "IPv6 ff02::db8:64%eth0",
    addresses: { a: "2001:db8::1/64", b: "2001:db8::2/64" },
    netsocket: () => ({
      "multicast address": "ff02::db8:64%eth0",
      "in interface": "eth0",
      "out interface": "eth0",
    }),
  },
];

/** Two namespaces joined by a veth named eth0 at both ends, a daemon in each. */
async function twoDaemons(
  lab: Lab,
  setup: Setup,
  dirs: string[],
  ends: ("a" | "b")[],
): Promise<{ daemons: Map<"a" | "b", Daemon>; nsA: string; nsB: string }> {
  const a = await lab.namespace("a");
  const b = await lab.namespace("b");
  await lab.link({ ns: a, name: "eth0", addresses: [setup.addresses.a] }, {
    ns: b,
    name: "eth0",
    addresses: [setup.addresses.b],
  });
  const daemons = new Map<"a" | "b", Daemon>();
  for (const end of ends) {
    const dir = await Deno.makeTempDir({ prefix: `joold-e2e-${end}-` });
    dirs.push(dir);
    const net = { "multicast port": "6464", reuseaddr: 1, ttl: 1, ...setup.netsocket(end) };
    await Deno.writeTextFile(`${dir}/netsocket.json`, JSON.stringify(net, null, "\t"));
    await Deno.writeTextFile(`${dir}/modsocket.json`, `{ "instance": "default" }\n`);
    const daemon = new Daemon(end === "a" ? a : b, dir);
    daemons.set(end, daemon);
  }
  for (const d of daemons.values()) await d.ready();
  return { daemons, nsA: a, nsB: b };
}

async function cleanup(lab: Lab, daemons: Daemon[], dirs: string[]): Promise<void> {
  for (const d of daemons) await d.stop();
  await lab.cleanup();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}

for (const setup of SETUPS) {
  netnsTest(
    `daemon ⇄ daemon, ${setup.label}: a kernel batch at A arrives byte-identical at B's kernel, and back`,
    async () => {
      const lab = new Lab();
      const dirs: string[] = [];
      const started: Daemon[] = [];
      try {
        const { daemons } = await twoDaemons(lab, setup, dirs, ["a", "b"]);
        const a = daemons.get("a")!, b = daemons.get("b")!;
        started.push(a, b);
        const toB = concat(Array.from({ length: 36 }, (_, i) => formatCEntry(i)));
        await a.inject(toB);
        await b.until("JOOLD_ADD at B", () => b.adds().length >= 1);
        assertEquals(b.adds(), [toB]);
        await a.until("JOOLD_ACK at A", () => a.messages.some((m) => m.cmd === JOOLD_ACK));

        const toA = concat([formatCEntry(100), formatCEntry(101)]);
        await b.inject(toA);
        await a.until("JOOLD_ADD at A", () => a.adds().length >= 1);
        assertEquals(a.adds(), [toA]);
        assertEquals(b.adds(), [toB]); // its own batch did not come back

        const sa = await queryStats(a.ns);
        assertEquals([sa.counters.NET_SENT_PKTS, sa.counters.NET_SENT_BYTES], [1, toB.length]);
        assertEquals([sa.counters.KERNEL_SENT_PKTS, sa.counters.NET_RCVD_BYTES], [1, toA.length]);
      } finally {
        await cleanup(lab, started, dirs);
      }
    },
    NEEDS,
  );
}

netnsTest("daemon: malformed datagrams are dropped, counted, and never reach the kernel", async () => {
  const lab = new Lab();
  const dirs: string[] = [];
  const started: Daemon[] = [];
  try {
    const { daemons, nsA } = await twoDaemons(lab, SETUPS[0], dirs, ["b"]);
    const b = daemons.get("b")!;
    started.push(b);
    // B learns its kernel's traffic first (one batch of its own, forwarded out), like a running daemon.
    await b.inject(formatCEntry(1));
    await b.until("B's first batch sent", () => b.messages.some((m) => m.cmd === JOOLD_ACK));

    // A plain sender in A: the same group and port, through the net channel test helper.
    const sender: LineProcess = lab.deno(nsA, `${ROOT}tests/netns/channel_peer.ts`, [JSON.stringify({
      file: "sender",
      groupAddress: "233.252.0.64",
      family: 4,
      port: 6464,
      inInterface: { text: "192.0.2.1", address: "192.0.2.1" },
      outInterface: { text: "192.0.2.1", address: "192.0.2.1" },
      reuseaddr: 1,
      ttl: 1,
    })], DAEMON_FLAGS);
    await sender.waitFor((l) => l.startsWith("ready "));
    let seed = 0x2545f491;
    const random = Uint8Array.from({ length: 77 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    const formatA = new Uint8Array(140);
    new DataView(formatA.buffer).setUint16(0, 140, true);
    new DataView(formatA.buffer).setUint16(2, 0x8001, true);
    const malformed: [string, Uint8Array][] = [
      ["random bytes", random],
      ["truncated entry", concat([formatCEntry(2), formatCEntry(3).subarray(0, 20)])],
      ["foreign format (A, 140-byte entries)", formatA],
      ["oversize", concat(Array.from({ length: 60 }, (_, i) => formatCEntry(i)))],
      ["empty", new Uint8Array(0)],
    ];
    const valid = concat([formatCEntry(7), formatCEntry(8)]);
    const hex = (p: Uint8Array) => Array.from(p, (x) => x.toString(16).padStart(2, "0")).join("");
    for (const [, p] of malformed) await sender.write(`send ${hex(p)}`);
    await sender.write(`send ${hex(valid)}`);
    await sender.waitFor((l) => l === "sent true", malformed.length + 1);
    // The valid one, sent last, is the only one that reaches the kernel.
    await b.until("the valid datagram's JOOLD_ADD", () => b.adds().length >= 1);
    assertEquals(b.adds(), [valid]);

    const s = await queryStats(b.ns);
    assertEquals(s.counters.NET_RCVD_PKTS, malformed.length + 1);
    assertEquals(s.counters.KERNEL_SENT_PKTS, 1);
    const netDrops = Object.entries(s.drops).filter(([k]) => k.startsWith("net_"));
    assertEquals(netDrops.reduce((n, [, v]) => n + v, 0), malformed.length, JSON.stringify(s.drops));
    assertEquals(s.drops.net_oversize, 1);
    assertEquals(s.drops.net_empty, 1);
    assert(s.drops.net_truncated_entry >= 1, JSON.stringify(s.drops));
    assertEquals(s.drops.net_foreign_format + s.drops.net_truncated_entry + s.drops.net_bad_field, 3);
  } finally {
    await cleanup(lab, started, dirs);
  }
}, NEEDS);
