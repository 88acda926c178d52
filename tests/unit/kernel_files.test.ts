/**
 * /proc and /sys reads under the operators' permissions (PERMISSION_FLAGS, no --allow-all): Deno 2.9's own file
 * API refuses those paths, so joold reads them through libc (ffi/kernel_files.ts). Run in a child process with
 * exactly those flags, as a router runs joold.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DENO, PERMISSION_FLAGS, ROOT } from "../helpers/daemon_process.ts";
import { readKernelFile, readKernelLink } from "../../ffi/kernel_files.ts";

/** Some loaded module's version file, the stand-in for /sys/module/jool/version on a host without Jool. */
function someModuleVersionFile(): string | undefined {
  for (const entry of Deno.readDirSync("/sys/module")) {
    const path = `/sys/module/${entry.name}/version`;
    try {
      Deno.statSync(path);
      return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return undefined;
}

Deno.test("kernel files: /proc and /sys are readable with the operators' permissions", async () => {
  const sysFile = someModuleVersionFile();
  const script = `
    import { readKernelFile, readKernelLink } from "${ROOT}ffi/kernel_files.ts";
    import { socketDropReader, socketInode } from "${ROOT}lib/net/socket_drops.ts";
    const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const udp = readKernelFile("/proc/net/udp") ?? "";
    let denoApi = "readable";
    try { Deno.readTextFileSync("/proc/net/udp"); } catch (e) { denoApi = e.constructor.name; }
    console.log(JSON.stringify({
      udpHeader: udp.split("\\n")[0].trim().split(/\\s+/).slice(0, 2),
      stdinLink: readKernelLink("/proc/self/fd/0") !== undefined,
      sys: ${sysFile ? `readKernelFile(${JSON.stringify(sysFile)})?.trim() ?? null` : "null"},
      absent: readKernelFile("/proc/joold-no-such-file") ?? null,
      denoApi,
    }));
    conn.close();
  `;
  const path = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(path, script);
    const out = await new Deno.Command(DENO, { args: ["run", "--quiet", ...PERMISSION_FLAGS, path] })
      .output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(result.udpHeader, ["sl", "local_address"]);
    assert(result.stdinLink, "readlink of /proc/self/fd/0");
    assertEquals(result.absent, null);
    if (sysFile) {
      assertEquals(result.sys, Deno.readTextFileSync(sysFile).trim());
    } else console.log("no /sys/module/*/version on this host: the /sys read is covered by the VM lab only");
    // Why the libc path exists; if this ever reads "readable", Deno's API could take over again.
    console.log(`Deno.readTextFileSync("/proc/net/udp") with --allow-read: ${result.denoApi}`);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("kernel files: absent paths are undefined, a directory is an error with its path", () => {
  assertEquals(readKernelFile("/proc/joold-no-such-file"), undefined);
  assertEquals(readKernelLink("/proc/joold-no-such-link"), undefined);
  assertEquals(readKernelFile("/proc/self/status")?.startsWith("Name:"), true);
  let message = "";
  try {
    readKernelFile("/proc/self");
  } catch (error) {
    message = (error as Error).message;
  }
  assert(message.startsWith("cannot read /proc/self: "), message);
});

Deno.test("kernel files: inodeOf gives a /sys directory's inode with the operators' permissions", async () => {
  const dir = [...Deno.readDirSync("/sys/module")].find((e) => e.isDirectory)?.name;
  assert(dir, "no /sys/module/* on this host");
  const path = `/sys/module/${dir}`;
  const script = `
    import { inodeOf } from "${ROOT}ffi/kernel_files.ts";
    console.log(JSON.stringify([String(inodeOf(${
    JSON.stringify(path)
  })), String(inodeOf("/sys/module/joold-none"))]));
  `;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, script);
    const out = await new Deno.Command(DENO, { args: ["run", "--quiet", ...PERMISSION_FLAGS, file] })
      .output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const [inode, absent] = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(inode, String(Deno.statSync(path).ino), `inode of ${path}`);
    assertEquals(absent, "undefined");
  } finally {
    await Deno.remove(file);
  }
});
