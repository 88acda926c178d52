/** Line commands on standard input, for the test helpers driven by a parent process (`tests/netns/`). */

/** Each line of standard input as its command word and its argument (the rest after one space, if any). */
export async function* stdinCommands(): AsyncGenerator<{ command: string; argument: string | undefined }> {
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    pending += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const [command, argument] = pending.slice(0, newline).split(" ");
      pending = pending.slice(newline + 1);
      yield { command, argument };
    }
  }
}
