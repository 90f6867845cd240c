// `minimind-native bench kernels [--filter NAME] [--json]` (more targets: train, generate, tokenizer).
import type { Argv, CommandModule } from 'yargs';
import { benchKernels } from '../../bench/kernels';
import type { KernelResult } from '../../bench/harness';

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

function printRow(r: KernelResult): void {
  console.log(
    `${r.kernel.padEnd(22)} ${r.pass.padEnd(4)} ${r.shape.padEnd(34)} ${(r.median_s * 1e3).toFixed(3).padStart(10)} ms ` +
      `${fmt(r.gflops).padStart(8)} GFLOP/s ${fmt(r.gbps).padStart(7)} GB/s ${fmt(r.pct_peak).padStart(6)}% of peak`,
  );
}

export const benchCommand: CommandModule<object, { target: string; json: boolean; filter: string }> = {
  command: 'bench <target>',
  describe: 'Measure kernel throughput (kernels) as % of this machine\'s peak',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['kernels'], describe: 'what to benchmark', type: 'string' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .option('filter', { type: 'string', default: '', describe: 'only kernels whose name contains this' }) as
      Argv<{ target: string; json: boolean; filter: string }>,
  handler: (argv) => {
    if (argv.target === 'kernels') {
      if (!argv.json) console.log('measuring this machine\'s peak FLOP/s and bandwidth...');
      const report = benchKernels(argv.filter, argv.json ? undefined : printRow);
      if (argv.json) console.log(JSON.stringify(report));
      else {
        const m = report.machine;
        console.log(`machine: ${m.threads} threads, peak ${m.peak_gflops.toFixed(1)} GFLOP/s ` +
          `(avx2 ${m.peak_avx2_gflops.toFixed(1)}, avx512 ${m.peak_avx512_gflops.toFixed(1)}), ` +
          `bandwidth ${m.bandwidth_gbps.toFixed(1)} GB/s`);
      }
    }
  },
};
