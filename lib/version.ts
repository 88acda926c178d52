/** This daemon's own version (printed by `--version`). */
export const JOOLD_VERSION = "0.1.0";
