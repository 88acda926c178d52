/**
 * Pure IP-address helpers for config validation: literal parsing and multicast scope rules.
 * @module
 */

/** Parses a dotted-quad IPv4 literal; undefined when it is not one. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parses an IPv6 literal (no scope, no brackets); undefined when it is not one. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array(missing).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** Family of a literal address, or undefined when the text is not a literal. */
export function literalFamily(text: string): 4 | 6 | undefined {
  if (parseIPv4(text)) return 4;
  if (parseIPv6(text)) return 6;
  return undefined;
}

/** True for 224.0.0.0/4 and ff00::/8. */
export function isMulticast(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4) return v4[0] >= 224 && v4[0] <= 239;
  const v6 = parseIPv6(address);
  return v6 !== undefined && v6[0] === 0xff;
}

/** True for IPv6 multicast groups whose scope needs an interface (interface-local ff?1, link-local ff?2). */
export function needsScope(address: string): boolean {
  const v6 = parseIPv6(address);
  if (!v6 || v6[0] !== 0xff) return false;
  const scope = v6[1] & 0x0f;
  return scope === 1 || scope === 2;
}
