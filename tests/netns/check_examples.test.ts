/**
 * `joold --check` on the README's IPv4 and IPv6 examples, in a namespace whose interfaces match them
 * (eth0 with 192.0.2.1 and 2001:db8::1), so interface checks run against a real kernel.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DAEMON_FLAGS, DENO, ROOT } from "../helpers/daemon_process.ts";
import { netnsTest, sh } from "./namespaces.ts";

netnsTest(
  "--check accepts the documented IPv4 and IPv6 examples and prints the effective configuration",
  async () => {
    const ns = `jchk${Deno.pid}`;
    const dir = await Deno.makeTempDir({ prefix: "joold-check-" });
    await sh("ip", "netns", "add", ns);
    try {
      await sh("ip", "-n", ns, "link", "set", "lo", "up");
      await sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
      await sh("ip", "-n", ns, "link", "set", "eth0", "up");
      await sh("ip", "-n", ns, "address", "add", "192.0.2.1/24", "dev", "eth0");
      await sh("ip", "-n", ns, "address", "add", "2001:db8::1/64", "dev", "eth0", "nodad");
      await Deno.writeTextFile(
        `${dir}/v6.json`,
        `{\n\t"multicast address": "ff08::db8:64:64",\n\t"multicast port": "6464",\n\t"in interface": "eth0",\n\t"out interface": "eth0",\n\t"reuseaddr": 1,\n\t"ttl": 3\n}\n`,
      );
      await Deno.writeTextFile(
        `${dir}/v4.json`,
        `{\n\t"multicast address": "233.252.0.64",\n\t"multicast port": "6464",\n\t"in interface": "192.0.2.1",\n\t"out interface": "192.0.2.1",\n\t"reuseaddr": 1,\n\t"ttl": 3\n}\n`,
      );
      await Deno.writeTextFile(`${dir}/modsocket.json`, `{\n\t"instance": "potato"\n}\n`);
      const check = async (file: string) => {
        const out = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            ns,
            DENO,
            "run",
            "--quiet",
            ...DAEMON_FLAGS,
            `${ROOT}main.ts`,
            "--check",
            file,
            "modsocket.json",
            "45678",
          ],
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const d = new TextDecoder();
        return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
      };
      const linkLine = await new Deno.Command("ip", {
        args: ["-n", ns, "-o", "link", "show", "eth0"],
        stdout: "piped",
      })
        .output();
      const index = Number(new TextDecoder().decode(linkLine.stdout).split(":")[0]);
      const v6 = await check("v6.json");
      assertEquals(v6.code, 0, v6.stderr);
      assertEquals(v6.stderr, "");
      assertEquals(
        v6.stdout,
        [
          "netsocket file: v6.json",
          "multicast address: ff08::db8:64:64",
          "family: IPv6",
          "multicast port: 6464",
          `in interface: eth0 (index ${index})`,
          `out interface: eth0 (index ${index})`,
          "reuseaddr: 1",
          "ttl: 3",
          "mode: upstream",
          "check pool4: 0",
          "modsocket file: modsocket.json",
          "instance: potato",
          "stats server: 127.0.0.1:45678, [::1]:45678",
          "",
        ].join("\n"),
      );
      const v4 = await check("v4.json");
      assertEquals(v4.code, 0, v4.stderr);
      assert(
        v4.stdout.includes("in interface: 192.0.2.1 (eth0)\nout interface: 192.0.2.1 (eth0)\n"),
        v4.stdout,
      );
      // The same file where eth0 lacks the address: a precise error.
      await sh("ip", "-n", ns, "address", "del", "192.0.2.1/24", "dev", "eth0");
      const gone = await check("v4.json");
      assertEquals(gone.code, 3);
      assertEquals(
        gone.stderr,
        'joold: v4.json: "in interface": no local interface has this address, got "192.0.2.1"; use an address of this host: 127.0.0.1 (lo)\n',
      );
    } finally {
      await sh("ip", "netns", "del", ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
