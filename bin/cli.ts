#!/usr/bin/env node
// The minimind-native command line. Commands live in lib/cli/; --threads applies to all of them.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { native } from '../lib/native';
import { commands } from '../lib/cli';

export async function main(args: string[]): Promise<void> {
  let cli = yargs(args)
    .scriptName('minimind-native')
    .option('threads', {
      type: 'number',
      global: true,
      describe: 'CPU threads for native kernels (default: MINIMIND_THREADS or all cores)',
    })
    .middleware((argv) => {
      if (typeof argv.threads === 'number') native.cpu.setThreads(argv.threads);
    })
    .demandCommand(1, 'choose a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .fail((msg, err, y) => {
      if (err) throw err;
      console.error(`${y.help()}`);
      console.error(`\nerror: ${msg}`);
      process.exit(2);
    });
  for (const c of commands) cli = cli.command(c);
  await cli.parseAsync();
}

if (require.main === module) {
  main(hideBin(process.argv)).catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
