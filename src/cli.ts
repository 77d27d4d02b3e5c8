// The jobline command line (commander). Only commander and node: built-ins load before the
// arguments are parsed; each command imports what it needs, so --help answers at once.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { addKeysCommand, addProcessCommands } from "./cliLocal.js";
import { say, warn } from "./cliOutput.js";
import { addJobsCommands, addQueuesCommand, addSchedulesCommand, addSubmitCommand } from "./cliRemoteCommands.js";
import { describeError } from "./errors.js";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

export function program(): Command {
  const p = new Command("jobline")
    .description("HTTP job orchestration on PostgreSQL. Configuration comes from the environment (see README.md).")
    .version(version, "-v, --version")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");
  addProcessCommands(p);
  addKeysCommand(p);
  addSubmitCommand(p);
  addJobsCommands(p);
  addSchedulesCommand(p);
  addQueuesCommand(p);
  return p;
}

async function main(argv: string[]) {
  const p = program();
  if (argv.length === 0) return say(p.helpInformation());
  try {
    await p.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; usage errors are 2 (commander says 1).
      if (e.exitCode !== 0 && e.code === "jobline.usage") warn(e.message);
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    const { UsageError } = await import("./cliRemote.js");
    if (e instanceof UsageError) {
      warn(e.message);
      process.exit(2);
    }
    throw e;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  warn(describeError(e));
  process.exit(1);
});
