/**
 * Reads the local instance's whole pool4 over a {@link KernelQuerySocket}: one POOL4_FOREACH listing per
 * protocol (TCP, UDP, ICMP), continued with the last entry as offset while the kernel sets flag M
 * (`lib/jool/pool4.ts`, docs/protocol.md §11.1). A listing the kernel cannot continue because pool4 changed
 * under it (EAGAIN) starts again from the beginning, a few times at most.
 * @module
 */
import { errorMessage } from "../errors.ts";
import { DEFAULT_REQUEST_VERSION, type JoolVersion } from "../jool/header.ts";
import { splitMessages } from "../jool/netlink.ts";
import { decodePool4Reply, encodePool4Foreach, type Pool4Entry, type Pool4Reply } from "../jool/pool4.ts";
import type { KernelQuerySocket } from "./transport.ts";

/** errno the kernel answers when pool4 changed between two requests of one listing. */
const EAGAIN = 11;
/** Listings of one protocol started again after EAGAIN, at most. */
const MAX_RESTARTS = 3;
/**
 * Requests of one listing, at most: a reply holds about fifty entries, so this bounds a pool4 at about five
 * million entries and a kernel that would set flag M for ever.
 */
const MAX_ROUNDS = 100_000;
/** How long one reply may take. The kernel answers a Generic Netlink request within the send call itself. */
const REPLY_TIMEOUT_MS = 2000;

/** The listing failed: the kernel refused it, did not answer, or answered something unusable. */
export class Pool4ReadError extends Error {
  /**
   * A failed listing.
   * @param message what went wrong, one line
   * @param code the kernel's positive errno, when it refused
   */
  constructor(message: string, readonly code?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "Pool4ReadError";
  }
}

/** What {@link readPool4} needs besides the socket. */
export interface Pool4ReadContext {
  /** The instance whose pool4 is read. */
  readonly instance: string;
  /** The version announced in requests (the kernel checks major.minor only). */
  readonly version?: JoolVersion;
  /** The next sequence number to use; called once per request. */
  readonly nextSeq: () => number;
  /** How long one reply may take (default 2000 ms). */
  readonly replyTimeoutMs?: number;
}

/** The protocols pool4 has a table for, in the order they are read: TCP, UDP, ICMP. */
export const POOL4_PROTOCOLS = [0, 1, 2] as const;

/** Reads every entry of every protocol. Throws {@link Pool4ReadError}. */
export async function readPool4(socket: KernelQuerySocket, context: Pool4ReadContext): Promise<Pool4Entry[]> {
  const all: Pool4Entry[] = [];
  for (const proto of POOL4_PROTOCOLS) all.push(...await readProtocol(socket, context, proto));
  return all;
}

async function readProtocol(
  socket: KernelQuerySocket,
  context: Pool4ReadContext,
  proto: number,
): Promise<Pool4Entry[]> {
  for (let attempt = 0;; attempt++) {
    const entries: Pool4Entry[] = [];
    let offset: Pool4Entry | undefined;
    let restart = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const seq = context.nextSeq();
      const request = encodePool4Foreach(
        {
          familyId: socket.familyId,
          pid: socket.localPort,
          seq,
          version: context.version ?? DEFAULT_REQUEST_VERSION,
          instance: context.instance,
        },
        proto,
        offset,
      );
      try {
        socket.send(request);
      } catch (cause) {
        throw new Pool4ReadError(`cannot send POOL4_FOREACH: ${errorMessage(cause)}`, undefined, { cause });
      }
      const reply = await awaitReply(socket, seq, context.replyTimeoutMs ?? REPLY_TIMEOUT_MS);
      if (reply.kind === "error") {
        if (reply.code === EAGAIN && offset !== undefined && attempt < MAX_RESTARTS) {
          restart = true;
          break;
        }
        throw new Pool4ReadError(
          `the kernel refused POOL4_FOREACH with errno ${reply.code}${
            reply.message ? ` (${reply.message})` : ""
          }`,
          reply.code,
        );
      }
      if (reply.kind === "invalid") throw new Pool4ReadError(`unusable POOL4_FOREACH reply: ${reply.detail}`);
      for (const entry of reply.entries) {
        if (entry.proto !== proto) {
          throw new Pool4ReadError(
            `the ${protoName(proto)} listing holds an entry of protocol ${entry.proto}`,
          );
        }
        entries.push(entry);
      }
      if (!reply.more) return entries;
      if (reply.entries.length === 0) {
        throw new Pool4ReadError("a POOL4_FOREACH reply asks for more but holds no entry to continue after");
      }
      offset = reply.entries[reply.entries.length - 1];
    }
    if (!restart) {
      throw new Pool4ReadError(`the ${protoName(proto)} listing did not end in ${MAX_ROUNDS} replies`);
    }
  }
}

/** Receives until a message answers `seq` (others are skipped) or the time is up. */
async function awaitReply(
  socket: KernelQuerySocket,
  seq: number,
  timeoutMs: number,
): Promise<Exclude<Pool4Reply, { kind: "unrelated" }>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const left = deadline - Date.now();
    const datagram = left > 0 ? await socket.receive(left) : undefined;
    if (datagram === undefined) throw new Pool4ReadError(`no reply to POOL4_FOREACH within ${timeoutMs} ms`);
    const { messages, error } = splitMessages(datagram);
    for (const message of messages) {
      const reply = decodePool4Reply(message, socket.familyId, seq);
      if (reply.kind !== "unrelated") return reply;
    }
    if (error) throw new Pool4ReadError(`malformed netlink datagram: ${error}`);
  }
}

function protoName(proto: number): string {
  return ["TCP", "UDP", "ICMP"][proto] ?? `protocol ${proto}`;
}
