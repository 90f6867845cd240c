// `minimind-native data prepare|demo`:
//   data prepare --stage pretrain|sft|dpo --data FILE --tokenizer DIR --out FILE [--max-seq-len N] [--strict]
//     tokenises FILE into OUT (+ OUT.idx or OUT.mask, and the OUT.json header; see lib/data/format.ts) with one
//     worker thread per core (--threads); a progress bar on a terminal; skipped records as FILE:LINE: reason.
//   data demo --out DIR [--seed N]
//     writes the embedded demo corpus (pretrain/sft/dpo/held-out jsonl; see lib/demo).
import * as os from 'node:os';
import * as cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { prepareData } from '../data/prepare';
import { STAGES, type InputFormat, type Stage } from '../data/records';
import { defaultTokenizerLoader, type TokenizerLoaderRef } from '../data/tokenizer-loader';
import { writeDemoData } from '../demo';

interface PrepareArgs {
  stage: Stage;
  data: string;
  tokenizer: string;
  out: string;
  'max-seq-len': number;
  'train-on'?: 'last' | 'all';
  strict: boolean;
  format?: InputFormat;
  threads?: number;
  'tokenizer-loader'?: string;
}

/** Skipped records printed one by one before only counting them. */
const MAX_PRINTED_SKIPS = 50;

const prepareCommand: CommandModule<object, PrepareArgs> = {
  command: 'prepare',
  describe: 'Tokenise a pretrain/sft/dpo file (jsonl, v1 csv, json array, text) into token and mask files',
  builder: (y: Argv) => y
    .option('stage', { choices: STAGES, demandOption: true, describe: 'training stage the data is for' })
    .option('data', { type: 'string', demandOption: true, describe: 'source file' })
    .option('tokenizer', { type: 'string', demandOption: true, describe: 'tokenizer folder (tokenizer.json, tokenizer_config.json)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output token file (OUT.json, OUT.mask/OUT.idx beside it)' })
    .option('max-seq-len', { type: 'number', default: 512, describe: 'ids per sft/dpo row (MiniMind max_seq_len)' })
    .option('train-on', { choices: ['last', 'all'] as const,
      describe: 'sft: train the last answer (v1) or every assistant turn (MiniMind2); default by format (CSV: last, jsonl: all)' })
    .option('strict', { type: 'boolean', default: false, describe: 'stop at the first bad record' })
    .option('format', { choices: ['jsonl', 'csv', 'text', 'json-array'] as const, describe: 'override detection by extension' })
    .option('tokenizer-loader', { type: 'string', hidden: true,
      describe: 'MODULE#EXPORT.PATH of a loader(dir) → TextTokenizer (default: lib/tokenizer Tokenizer.load)' }) as
    unknown as Argv<PrepareArgs>,
  handler: async (argv) => {
    const threads = argv.threads ?? os.availableParallelism();
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({
      format: `prepare ${argv.stage} [{bar}] {percentage}% | {done}/{size} MB | {rate} MB/s | ETA {eta_formatted}`,
      stream: process.stderr, hideCursor: true, etaBuffer: 20,
    }, cliProgress.Presets.shades_classic) : undefined;
    const started = Date.now();
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    let skipped = 0;
    try {
      const result = await prepareData({
        stage: argv.stage, data: argv.data, tokenizerDir: argv.tokenizer, out: argv.out,
        maxSeqLen: argv['max-seq-len'], trainOn: argv['train-on'], strict: argv.strict, format: argv.format, threads,
        tokenizerLoader: parseLoader(argv['tokenizer-loader']),
        onSkip: (file, s) => {
          if (++skipped <= MAX_PRINTED_SKIPS) {
            bar?.stop();
            console.error(`warning: ${file}:${s.line}: ${s.reason} (skipped)`);
          }
        },
        onProgress: (p) => {
          if (!bar) return;
          const seconds = Math.max(1e-3, (Date.now() - started) / 1000);
          const payload = { done: mb(p.bytesRead), size: mb(p.totalBytes), rate: mb(p.bytesRead / seconds) };
          if (bar.getTotal() !== p.totalBytes) bar.start(p.totalBytes, p.bytesRead, payload);
          else bar.update(p.bytesRead, payload);
        },
      });
      bar?.stop();
      const { counts } = result.header;
      if (skipped > MAX_PRINTED_SKIPS) console.error(`warning: ${skipped - MAX_PRINTED_SKIPS} more records skipped`);
      console.log(`wrote ${result.files.join(', ')}`);
      console.log(`${counts.samples} samples, ${counts.tokens} tokens, ${counts.skipped} skipped, ` +
        `${counts.truncated} truncated; ${result.seconds.toFixed(1)} s, ` +
        `${mb(result.inputBytes / Math.max(1e-3, result.seconds))} MB/s with ${threads} threads`);
    } finally {
      bar?.stop();
    }
  },
};

/** `--tokenizer-loader /path/module.js#Tokenizer.load` → a TokenizerLoaderRef. */
function parseLoader(spec: string | undefined): TokenizerLoaderRef {
  if (!spec) return defaultTokenizerLoader;
  const hash = spec.lastIndexOf('#');
  if (hash < 0) throw new Error(`--tokenizer-loader ${spec}: expected MODULE#EXPORT`);
  return { module: spec.slice(0, hash), exportPath: spec.slice(hash + 1) };
}

interface DemoArgs {
  out: string;
  seed: number;
  'pretrain-bytes': number;
}

const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Write the embedded demo corpus (pretrain, sft, dpo, held-out jsonl)',
  builder: (y: Argv) => y
    .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
    .option('seed', { type: 'number', default: 0 })
    .option('pretrain-bytes', { type: 'number', default: 2_000_000, describe: 'approximate pretraining text size' }) as
    unknown as Argv<DemoArgs>,
  handler: (argv) => {
    const files = writeDemoData(argv.out, { seed: argv.seed, pretrainBytes: argv['pretrain-bytes'] });
    for (const [part, file] of Object.entries(files)) console.log(`${part}: ${file}`);
  },
};

export const dataCommand: CommandModule = {
  command: 'data',
  describe: 'Prepare training data; write the demo corpus',
  builder: (y: Argv) => y.command(prepareCommand).command(demoCommand).demandCommand(1, 'choose prepare or demo'),
  handler: () => undefined,
};
