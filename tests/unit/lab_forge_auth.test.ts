/**
 * The VM lab's attacker against keyed routers (scripts/lab/forge_auth.ts): every forged datagram's label is what
 * a keyed receiver's wire decides, and none would reach a kernel.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { forgedAgainstKey } from "../../scripts/lab/forge_auth.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import { AuthenticatedWire, FramedDataWire } from "../../lib/auth/wire.ts";
import { NET_MAX_PAYLOAD } from "../../lib/net/channel.ts";

for (const format of ["A", "B", "C"] as const) {
  Deno.test(`lab forge_auth (format ${format}): each label is the keyed receiver's verdict; nothing gets in`, () => {
    const wire = new AuthenticatedWire(
      new FramedDataWire(),
      new Authenticator([crypto.getRandomValues(new Uint8Array(32))]),
    );
    const datagrams = forgedAgainstKey(format);
    const reasons = new Set(datagrams.map((d) => d.reason));
    assertEquals([...reasons].sort(), ["net_auth_bad", "net_auth_missing", "net_oversize"]);
    for (const d of datagrams) {
      // The net channel drops what is larger than any legal datagram before any codec sees it.
      const verdict = d.bytes.length > NET_MAX_PAYLOAD ? "net_oversize" : (() => {
        const r = wire.decode(d.bytes, format);
        assert(r.ok !== true, `accepted: ${d.what}`);
        return r.ok === false ? r.reason : "handled";
      })();
      assertEquals(verdict, d.reason, d.what);
    }
  });
}
