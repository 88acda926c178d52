/** The VM lab's pool4 forger (scripts/lab/forge_pool4.ts): valid datagrams, one session in and one out of the lab's pool4. */
import { assertEquals } from "../helpers/assert.ts";
import { forgedDatagram } from "../../scripts/lab/forge_pool4.ts";
import { validatePayload } from "../../lib/session/payload.ts";
import { checkPool4, pool4Table } from "../../lib/session/pool4_check.ts";
import type { SessionFormat } from "../../lib/session/format.ts";
import { parsePool4Spec } from "../helpers/pool4_double.ts";

/** The lab's pool4 (scripts/lab/guest/lib.sh instance_add). */
const LAB_POOL4 = pool4Table(parsePool4Spec(
  "tcp:198.51.100.1/32:61001-65535,udp:198.51.100.1/32:61001-65535,icmp:198.51.100.1/32:61001-65535",
));

Deno.test("lab forger: each round is a valid datagram whose first session only is inside the lab's pool4", () => {
  for (const format of ["A", "B", "C"] as SessionFormat[]) {
    for (const round of [1, 2]) {
      const datagram = forgedDatagram(format, round);
      assertEquals(validatePayload(datagram, format), { ok: true, sessions: 2 }, `format ${format}`);
      const checked = checkPool4(datagram, format, LAB_POOL4);
      assertEquals([checked.sessions, checked.outside], [1, 1]);
      assertEquals(checked.firstOutside, `UDP 198.51.100.2#${61500 + 10 * round + 2}`);
    }
  }
});
