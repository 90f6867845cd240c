// `minimind-native demo`: the whole pipeline on the embedded demo data — tokenizer, pretrain, SFT, a few
// sample answers and the held-out accuracy (printed as `accuracy: N%`).
import type { Argv, CommandModule } from 'yargs';
import { demoPaths, demoReport, ensureDemoData, scoreHeldout } from '../train/demo';
import { defaultTrainArgs, resolveTrainOptions } from './train';
import { runTraining } from '../train/run';

interface DemoArgs {
  workspace: string;
  quiet: boolean;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run the whole pipeline on the embedded demo data and report held-out accuracy',
  builder: (y: Argv) =>
    y
      .option('workspace', { type: 'string', default: 'minimind-demo', describe: 'folder for data, tokenizer and models' })
      .option('quiet', { type: 'boolean', default: false }) as Argv<DemoArgs>,
  handler: async (argv) => {
    const started = Date.now();
    await ensureDemoData(argv.workspace, argv.quiet);
    for (const stage of ['pretrain', 'sft'] as const) {
      const opts = await resolveTrainOptions(defaultTrainArgs(stage, argv.workspace, argv.quiet));
      await runTraining(opts);
    }
    const p = demoPaths(argv.workspace);
    const score = scoreHeldout(p.sftOut, p.heldout);
    console.log(demoReport(score, (Date.now() - started) / 1000));
  },
};
