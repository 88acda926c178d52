import { assert, assertEquals } from "../helpers/assert.ts";
import { Stats } from "../../lib/stats.ts";
import { renderCsvText, renderForRequest, renderPrometheus } from "../../lib/stats_format.ts";
import { STATS_ANSWERS_PER_SECOND, StatsServer } from "../../lib/stats_server.ts";
import { MemoryLogger } from "../helpers/memory_logger.ts";
import { LogRateLimiter } from "../../lib/rate_limit.ts";

function sample(): Stats {
  const stats = new Stats();
  stats.add("KERNEL_SENT_PKTS", 4);
  stats.add("KERNEL_SENT_BYTES", 208);
  stats.add("NET_SENT_PKTS", 4);
  stats.add("NET_SENT_BYTES", 208);
  stats.drop("net_truncated_entry");
  stats.kernelError(3);
  return stats;
}

Deno.test("CSV text: six lines in upstream's order, byte for byte", () => {
  assertEquals(
    renderCsvText(sample().snapshot()),
    "KERNEL_SENT_PKTS,4\nKERNEL_SENT_BYTES,208\nNET_RCVD_PKTS,0\nNET_RCVD_BYTES,0\nNET_SENT_PKTS,4\nNET_SENT_BYTES,208\n",
  );
});

Deno.test("counters go past 2^31 without wrapping", () => {
  const stats = new Stats();
  stats.add("NET_RCVD_BYTES", 2 ** 31 - 1);
  stats.add("NET_RCVD_BYTES", 2);
  assertEquals(stats.get("NET_RCVD_BYTES"), 2 ** 31 + 1);
  assert(renderCsvText(stats.snapshot()).includes("NET_RCVD_BYTES,2147483649\n"));
});

Deno.test("request words pick the view", () => {
  const snap = sample().snapshot();
  assertEquals(renderForRequest("", snap), renderCsvText(snap));
  assertEquals(renderForRequest("\n", snap), renderCsvText(snap));
  const json = JSON.parse(renderForRequest("json\n", snap, { instance: "default" }));
  assertEquals(json.instance, "default");
  assertEquals(json.counters.KERNEL_SENT_PKTS, 4);
  assertEquals(json.drops.net_truncated_entry, 1);
  assertEquals(json.kernelErrors, { "3": 1 });
  assertEquals(renderForRequest("PROMETHEUS", snap), renderPrometheus(snap));
});

Deno.test("prometheus exposition: HELP/TYPE per metric, labelled drops", () => {
  const text = renderPrometheus(sample().snapshot());
  assert(text.includes("# TYPE joold_kernel_sent_pkts_total counter\njoold_kernel_sent_pkts_total 4\n"));
  assert(text.includes('joold_drops_total{reason="net_truncated_entry"} 1\n'));
  assert(text.includes('joold_kernel_error_replies_by_code_total{code="3"} 1\n'));
  for (const line of text.trimEnd().split("\n")) {
    assert(/^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[\w]+"\})? \d+)$/.test(line), `bad exposition line: ${line}`);
  }
});

Deno.test("what fits one packet: fragmented and split counts in the json and prometheus views, not in the CSV", () => {
  const stats = new Stats();
  stats.add("NET_SENT_FRAGMENTED", 3);
  stats.add("NET_BATCHES_SPLIT", 5);
  const snap = stats.snapshot();
  const json = JSON.parse(renderForRequest("json", snap));
  assertEquals([json.counters.NET_SENT_FRAGMENTED, json.counters.NET_BATCHES_SPLIT], [3, 5]);
  const text = renderPrometheus(snap);
  assert(text.includes("\njoold_net_sent_fragmented_total 3\n"), text);
  assert(text.includes("\njoold_net_batches_split_total 5\n"), text);
  assert(
    text.includes("# HELP joold_net_batches_split_total Session batches cut at a session boundary"),
    text,
  );
  // The six lines stay upstream's, byte for byte.
  assertEquals(renderCsvText(snap).split("\n").length, 7);
  assert(!renderCsvText(snap).includes("FRAGMENTED"));
});

Deno.test("stats server answers nc-style UDP queries on loopback", async () => {
  const stats = sample();
  const log = new MemoryLogger();
  const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = await freeUdpPort();
  const server = StatsServer.open({
    port,
    addresses: ["127.0.0.1", "::1"],
    defaultAddresses: true,
    stats,
    log,
    describe: () => ({ instance: "default" }),
  });
  try {
    const ask = async (text: string, hostname = "127.0.0.1") => {
      const client = hostname === "127.0.0.1"
        ? probe
        : Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
      await client.send(new TextEncoder().encode(text), { transport: "udp", hostname, port });
      const [reply] = await client.receive();
      if (client !== probe) client.close();
      return new TextDecoder().decode(reply);
    };
    assertEquals(
      await ask("\n"),
      "KERNEL_SENT_PKTS,4\nKERNEL_SENT_BYTES,208\nNET_RCVD_PKTS,0\nNET_RCVD_BYTES,0\nNET_SENT_PKTS,4\nNET_SENT_BYTES,208\n",
    );
    assertEquals(await ask(""), renderCsvText(stats.snapshot()));
    stats.add("NET_RCVD_PKTS");
    assertEquals(JSON.parse(await ask("json")).counters.NET_RCVD_PKTS, 1);
    assert((await ask("prometheus\n")).includes("joold_net_rcvd_pkts_total 1\n"));
    if (server.boundAddresses.length === 2) {
      assertEquals(JSON.parse(await ask("json", "::1")).instance, "default");
    }
  } finally {
    probe.close();
    await server.close();
  }
});

Deno.test("stats server: beyond its answer budget a request is read, counted and not answered", async () => {
  const stats = new Stats();
  let now = 0;
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = await freeUdpPort();
  const server = StatsServer.open({
    port,
    addresses: ["127.0.0.1"],
    defaultAddresses: false,
    stats,
    log: new MemoryLogger(),
    now: () => now,
  });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  try {
    // The clock stands still: one burst's worth is answered, the rest only counted. (CSV requests: their short
    // answers all fit the client's receive buffer.)
    const sent = STATS_ANSWERS_PER_SECOND + 50;
    for (let i = 0; i < sent; i++) await client.send(new TextEncoder().encode("\n"), to);
    for (let i = 0; i < STATS_ANSWERS_PER_SECOND; i++) await client.receive();
    for (let i = 0; i < 200 && stats.get("STATS_REQUESTS_UNANSWERED") < 50; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(stats.get("STATS_REQUESTS_UNANSWERED"), 50);
    // A second later the budget is back: the next scrape is answered, and shows the count.
    now += 1000;
    await client.send(new TextEncoder().encode("json"), to);
    const [reply] = await client.receive();
    assertEquals(JSON.parse(new TextDecoder().decode(reply)).counters.STATS_REQUESTS_UNANSWERED, 50);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("stats server: a port in use is one line naming address and port", async () => {
  const port = await freeUdpPort();
  const holder = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  try {
    let message = "";
    try {
      StatsServer.open({
        port,
        addresses: ["127.0.0.1"],
        defaultAddresses: false,
        stats: new Stats(),
        log: new MemoryLogger(),
      });
    } catch (error) {
      message = (error as Error).message;
    }
    assert(message.startsWith(`stats server: cannot bind 127.0.0.1:${port} (`), message);
    assert(message.endsWith("); pick a free port or another --stats-address"), message);
  } finally {
    holder.close();
  }
});

Deno.test("log rate limiter: first at once, then once per interval with the suppressed count", () => {
  let now = 0;
  const limiter = new LogRateLimiter(10_000, () => now);
  assertEquals(limiter.admit("a"), 0);
  assertEquals(limiter.admit("a"), undefined);
  assertEquals(limiter.admit("b"), 0);
  now = 5_000;
  assertEquals(limiter.admit("a"), undefined);
  now = 10_000;
  assertEquals(limiter.admit("a"), 2);
  assertEquals(limiter.admit("a"), undefined);
});

async function freeUdpPort(): Promise<number> {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  await Promise.resolve();
  return port;
}

Deno.test("rate limiter: one wording for what was suppressed", () => {
  let now = 0;
  const limiter = new LogRateLimiter(1_000, () => now);
  assertEquals(limiter.line("k", "dropped"), "dropped");
  assertEquals(limiter.line("k", "dropped"), undefined);
  assertEquals(limiter.line("k", "dropped"), undefined);
  now = 1_000;
  assertEquals(limiter.line("k", "dropped"), "dropped (2 more since the last line)");
});
