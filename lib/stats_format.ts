/**
 * Renders the counters for the stats server: six `NAME,value` lines (upstream's reply), a JSON object, and
 * Prometheus text (docs/protocol.md §9.2).
 * @module
 */
import { COUNTER_NAMES, type CounterName, DROP_REASONS, type StatsSnapshot } from "./stats.ts";

/** The counters of the six-line `NAME,value` reply, in upstream's order. */
export const CSV_COUNTERS = [
  "KERNEL_SENT_PKTS",
  "KERNEL_SENT_BYTES",
  "NET_RCVD_PKTS",
  "NET_RCVD_BYTES",
  "NET_SENT_PKTS",
  "NET_SENT_BYTES",
] as const;

/** `NAME,value\n` × 6, byte-compatible with upstream's reply. */
export function renderCsvText(snapshot: StatsSnapshot): string {
  return CSV_COUNTERS.map((name) => `${name},${snapshot.counters[name]}\n`).join("");
}

/** Every counter as one JSON object (plus a trailing newline). */
export function renderJson(snapshot: StatsSnapshot, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, ...snapshot }) + "\n";
}

const HELP: Record<CounterName, string> = {
  KERNEL_SENT_PKTS: "JOOLD_ADD messages sent to the local Jool instance",
  KERNEL_SENT_BYTES: "Session bytes in the JOOLD_ADD messages sent to the local Jool instance",
  NET_RCVD_PKTS: "Datagrams received from the network",
  NET_RCVD_BYTES: "Bytes of the datagrams received from the network",
  NET_SENT_PKTS: "Datagrams sent to the network",
  NET_SENT_BYTES: "Bytes of the datagrams sent to the network",
  KERNEL_RCVD_BATCHES: "Session batches received from the local Jool instance",
  KERNEL_RCVD_BYTES: "Session bytes in the batches received from the local Jool instance",
  KERNEL_RCVD_SESSIONS: "Sessions in the batches received from the local Jool instance",
  KERNEL_SENT_SESSIONS: "Sessions in the JOOLD_ADD messages sent to the local Jool instance",
  KERNEL_ACKS_SENT: "JOOLD_ACK messages sent to the local Jool instance",
  KERNEL_OTHER_INSTANCE_BATCHES: "Batches of other Jool instances in this namespace, ignored",
  KERNEL_ERROR_REPLIES: "Error replies received from the kernel",
  KERNEL_ADDS_REJECTED_SS_DISABLED: "JOOLD_ADD rejected because session sync is disabled on the instance",
  KERNEL_SEND_ERRORS: "Netlink sends that failed",
  NET_RCVD_SESSIONS: "Sessions in the datagrams accepted from the network",
  NET_SENT_SESSIONS: "Sessions in the datagrams sent to the network",
  NET_SEND_ERRORS: "Datagrams that could not be sent",
  NET_RECV_ERRORS: "Errors receiving from the network",
  NET_SOCKET_DROPS: "Datagrams the kernel dropped because the multicast socket's receive buffer was full",
  NET_SENT_FRAGMENTED: "Datagrams sent larger than one packet of the sync link carries, so in IP fragments",
  NET_BATCHES_SPLIT:
    "Session batches cut at a session boundary because their frame would not have fit one packet of the sync link",
  NET_SESSIONS_OUTSIDE_POOL4:
    "Sessions from the network dropped because their IPv4 side is outside the local pool4",
  POOL4_READ_ERRORS: "Periodic reads of the local pool4 that failed (the last table read stayed in use)",
  STATS_REQUESTS_UNANSWERED: "Stats requests read but not answered, beyond the stats server's answer budget",
};

/** Prometheus text exposition format (version 0.0.4); `extra` is appended (whole lines). */
export function renderPrometheus(snapshot: StatsSnapshot, extra?: () => string): string {
  const out: string[] = [];
  for (const name of COUNTER_NAMES) {
    const metric = `joold_${name.toLowerCase()}_total`;
    out.push(
      `# HELP ${metric} ${HELP[name]}.`,
      `# TYPE ${metric} counter`,
      `${metric} ${snapshot.counters[name]}`,
    );
  }
  out.push(
    "# HELP joold_drops_total Datagrams or kernel messages dropped, by reason.",
    "# TYPE joold_drops_total counter",
  );
  for (const reason of DROP_REASONS) {
    out.push(`joold_drops_total{reason="${reason}"} ${snapshot.drops[reason]}`);
  }
  out.push(
    "# HELP joold_kernel_error_replies_by_code_total Kernel error replies, by errno code.",
    "# TYPE joold_kernel_error_replies_by_code_total counter",
  );
  for (const [code, count] of Object.entries(snapshot.kernelErrors)) {
    out.push(`joold_kernel_error_replies_by_code_total{code="${code}"} ${count}`);
  }
  return out.join("\n") + "\n" + (extra?.() ?? "");
}

/** Picks the view for a request's text: `json`, `prometheus`, anything else (the cron case) → the six lines. */
export function renderForRequest(
  request: string,
  snapshot: StatsSnapshot,
  extra: Record<string, unknown> = {},
  prometheus?: () => string,
): string {
  const word = request.trim().toLowerCase();
  if (word === "json") return renderJson(snapshot, extra);
  if (word === "prometheus" || word === "metrics") return renderPrometheus(snapshot, prometheus);
  return renderCsvText(snapshot);
}
