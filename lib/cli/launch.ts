// `minimind-native launch [options] -- <command>`: runs <command> (any minimind-native command, usually
// `train ...`) as --nproc-per-node ranks of a data-parallel run on this node, like torchrun. For several
// nodes, run it on each node with the same --nnodes/--master-addr/--master-port and its own --node-rank.
// The ranks are this same CLI (node + this script), started with the environment lib/dist/launch.ts describes.
import type { Argv, CommandModule } from 'yargs';
import { launch } from '../dist/launch';

interface LaunchArgs {
  'nproc-per-node': number;
  nnodes: number;
  'node-rank': number;
  'master-addr': string;
  'master-port'?: number;
  '--'?: (string | number)[];
}

export const launchCommand: CommandModule<object, LaunchArgs> = {
  command: 'launch',
  describe: 'Run a command (e.g. train) as N data-parallel ranks: launch --nproc-per-node N -- train ...',
  builder: (y: Argv) =>
    y
      .parserConfiguration({ 'populate--': true })
      .option('nproc-per-node', { type: 'number', default: 1, describe: 'ranks on this node' })
      .option('nnodes', { type: 'number', default: 1, describe: 'nodes in the run' })
      .option('node-rank', { type: 'number', default: 0, describe: 'this node\'s index, 0..nnodes-1' })
      .option('master-addr', { type: 'string', default: '127.0.0.1', describe: 'the address of node 0 (rank 0 hosts the rendezvous store)' })
      .option('master-port', { type: 'number', describe: 'the store\'s port (default: a free port on one node; required with --nnodes > 1)' })
      .example('$0 launch --nproc-per-node 2 -- train pretrain --data data.jsonl', 'two CPU ranks on this machine') as
      Argv<LaunchArgs>,
  handler: async (argv) => {
    const rest = (argv['--'] ?? []).map(String);
    if (rest.length === 0) {
      throw new Error('launch: give the command to run after --, e.g. `launch --nproc-per-node 2 -- train pretrain ...`');
    }
    process.exitCode = await launch({
      nprocPerNode: argv['nproc-per-node'],
      nnodes: argv.nnodes,
      nodeRank: argv['node-rank'],
      masterAddr: argv['master-addr'],
      masterPort: argv['master-port'] ?? null,
      // This same CLI, with the same node flags (e.g. a TypeScript loader in development).
      command: [process.execPath, ...process.execArgv, process.argv[1], ...rest],
      forwardSignals: true,
    });
  },
};
