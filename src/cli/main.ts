#!/usr/bin/env node
// The `nanoseek` command. Each subcommand lives in its own file under ./commands and only parses
// flags and prints: the library does the work.
import { Command } from 'commander';
import { commands } from './commands/index.js';

// `nanoseek logits … | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command();
program.name('nanoseek').description('DeepSeek-style reasoning models, trained and served on a CPU').version('0.1.0');
program.showHelpAfterError();
for (const register of commands) register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`nanoseek: ${message}\n`);
  if (process.env.NANOSEEK_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
