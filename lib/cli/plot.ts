// `minimind-native plot --run DIR [--out curves.svg]`: loss, learning rate and throughput against step.
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { metricsSvg, readMetrics } from '../train/plot';
import { writeFileAtomic } from '../util/fsutil';

export const plotCommand: CommandModule<object, { run: string; out?: string }> = {
  command: 'plot',
  describe: 'Draw a training run\'s loss, lr and tokens/s curves as an SVG',
  builder: (y: Argv) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'a training --out folder (with metrics.jsonl)' })
      .option('out', { type: 'string', describe: 'SVG file (default: <run>/curves.svg)' }) as Argv<{ run: string; out?: string }>,
  handler: (argv) => {
    const out = argv.out ?? path.join(argv.run, 'curves.svg');
    writeFileAtomic(out, metricsSvg(readMetrics(argv.run), path.basename(path.resolve(argv.run))));
    console.log(`wrote ${out}`);
  },
};
