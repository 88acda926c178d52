/**
 * Session sync against the real Jool 4.1.13 kernel module in a QEMU guest (one boot for every case).
 * Needs root and a /boot kernel; skips otherwise (fails with CI=true). See scripts/lab/.
 */
import { labSuite } from "./lab_suite.ts";

labSuite("4.1.13");
