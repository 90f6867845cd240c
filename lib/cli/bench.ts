// `minimind-native bench kernels|train [--json]`: throughput as % of this machine's measured peak.
import type { Argv, CommandModule } from 'yargs';
import { benchAllReduce } from '../../bench/allreduce';
import { benchGenerate } from '../../bench/generate';
import type { KernelResult } from '../../bench/harness';
import { benchKernels } from '../../bench/kernels';
import { benchTokenizer } from '../../bench/tokenizer';
import { benchTrain } from '../../bench/train';
import { checkWeightDtype, DTYPE_OPTION } from '../infer/weights';

const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

function printKernelRow(r: KernelResult): void {
  console.log(
    `${r.kernel.padEnd(22)} ${r.pass.padEnd(4)} ${r.shape.padEnd(34)} ${(r.median_s * 1e3).toFixed(3).padStart(10)} ms ` +
      `${fmt(r.gflops).padStart(8)} GFLOP/s ${fmt(r.gbps).padStart(7)} GB/s ${fmt(r.pct_peak).padStart(6)}% of peak`,
  );
}

interface BenchArgs {
  target: string;
  json: boolean;
  filter: string;
  'model-config': string;
  'batch-size': number;
  'seq-len': number;
  steps: number;
  dtype: string;
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench <target>',
  describe: 'Measure throughput: kernels (each op, % of peak), train (tokens/s, MFU, peak memory) or tokenizer (MB/s vs HF) or allreduce (CPU data-parallel GB/s)',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['kernels', 'train', 'generate', 'tokenizer', 'allreduce'], describe: 'what to benchmark', type: 'string' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .option('filter', { type: 'string', default: '', describe: 'kernels: only names containing this' })
      .option('model-config', { type: 'string', default: 'minimind-v1-small', describe: 'train/generate: named config or config.json' })
      .option('batch-size', { type: 'number', default: 8, describe: 'train: batch size' })
      .option('seq-len', { type: 'number', default: 512, describe: 'train: sequence length' })
      .option('steps', { type: 'number', default: 3, describe: 'train: timed steps (after one warm-up step)' })
      .option('dtype', { ...DTYPE_OPTION, describe: `generate: ${DTYPE_OPTION.describe}` }) as
      Argv<BenchArgs>,
  handler: async (argv) => {
    if (argv.target === 'kernels') {
      if (!argv.json) console.log('measuring this machine\'s peak FLOP/s and bandwidth...');
      const report = benchKernels(argv.filter, argv.json ? undefined : printKernelRow);
      if (argv.json) console.log(JSON.stringify(report));
      else {
        const m = report.machine;
        console.log(`machine: ${m.threads} threads, peak ${m.peak_gflops.toFixed(1)} GFLOP/s ` +
          `(avx2 ${m.peak_avx2_gflops.toFixed(1)}, avx512 ${m.peak_avx512_gflops.toFixed(1)}), ` +
          `bandwidth ${m.bandwidth_gbps.toFixed(1)} GB/s`);
      }
    } else if (argv.target === 'generate') {
      const dtype = checkWeightDtype(argv.dtype, 'cpu');
      const r = benchGenerate({ modelConfig: argv['model-config'], dtype, promptTokens: 256, newTokens: 256 });
      if (argv.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.model} ${r.dtype}, ${r.threads} threads: prefill ${r.prefill_tokens_per_s.toFixed(0)} tokens/s, decode ` +
          `${r.decode_tokens_per_s.toFixed(1)} tokens/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB`);
      }
    } else if (argv.target === 'allreduce') {
      for (const transport of ['shm', 'tcp'] as const) {
        const r = await benchAllReduce({ transport });
        if (argv.json) console.log(JSON.stringify(r));
        else {
          for (const z of r.sizes) {
            console.log(`${transport} ${r.world} ranks ${(z.bytes / 2 ** 20).toFixed(0).padStart(3)} MiB: bus ${z.busbw_gbps.toFixed(2)} GB/s ` +
              `(memcpy ${z.memcpy_gbps.toFixed(2)} GB/s)`);
          }
          console.log(`${transport}: DDP adds ${(1e3 * r.ddp.step_overhead_s).toFixed(0)} ms per step for ${(r.ddp.params / 1e6).toFixed(1)}M gradients ` +
            `without overlap, ${(1e3 * r.ddp.exposed_s).toFixed(0)} ms overlapped with the backward pass`);
        }
      }
    } else if (argv.target === 'tokenizer') {
      const r = await benchTokenizer({ print: !argv.json });
      if (argv.json) console.log(JSON.stringify(r));
    } else if (argv.target === 'train') {
      const r = benchTrain({ modelConfig: argv['model-config'], batchSize: argv['batch-size'], seqLen: argv['seq-len'], steps: argv.steps });
      if (argv.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.model} (${(r.params / 1e6).toFixed(2)}M params), batch ${r.batch_size} x ${r.seq_len}, ${r.threads} threads: ` +
          `${r.tokens_per_s.toFixed(0)} tokens/s, ${r.step_s.toFixed(3)} s/step, MFU ${(100 * r.mfu).toFixed(1)}% ` +
          `of ${r.peak_gflops.toFixed(0)} GFLOP/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB`);
      }
    }
  },
};
