/**
 * Session-entry formats of Jool 4.1.x (docs/protocol.md §5). None is self-describing; the local kernel's version decides.
 * @module
 */

/** A: 140-byte nested entries (4.1.0–4.1.11). B: 52-byte compact v1 (4.1.12). C: 40-byte compact v2 (≥4.1.13). */
export type SessionFormat = "A" | "B" | "C";

/** Header-inclusive length of one JNLAL_ENTRY attribute in each format. */
export const ENTRY_SIZE: Readonly<Record<SessionFormat, number>> = { A: 140, B: 52, C: 40 };
