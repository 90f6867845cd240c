// A tiny training workspace for the training tests, built once per test file in a temporary folder:
// a small slice of the demo corpus, a 384-token tokenizer trained on it, prepared pretrain/sft/dpo files,
// and a 2-layer model config small enough for a step to take milliseconds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareData } from '../lib/data';
import { writeDemoData } from '../lib/demo';
import { trainTokenizer } from '../lib/tokenizer/train';
import type { RunOptions } from '../lib/train/run';

export interface TrainFixture {
  dir: string;
  tokenizer: string;
  config: string;
  pretrain: string;
  sft: string;
  dpo: string;
}

export const TINY_CONFIG = {
  dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 384, max_seq_len: 64, hidden_dim: 64,
};

export async function makeTrainFixture(): Promise<TrainFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-train-'));
  const files = writeDemoData(path.join(dir, 'data'), { pretrainBytes: 60_000 });
  const tokenizer = path.join(dir, 'tokenizer');
  await trainTokenizer({ files: [files.pretrain], vocabSize: TINY_CONFIG.vocab_size, out: tokenizer });
  const config = path.join(dir, 'tiny.json');
  fs.writeFileSync(config, JSON.stringify(TINY_CONFIG));
  const out = { pretrain: path.join(dir, 'pretrain.bin'), sft: path.join(dir, 'sft.bin'), dpo: path.join(dir, 'dpo.bin') };
  await prepareData({ stage: 'pretrain', data: files.pretrain, tokenizerDir: tokenizer, out: out.pretrain, threads: 0 });
  await prepareData({ stage: 'sft', data: files.sft, tokenizerDir: tokenizer, out: out.sft, maxSeqLen: 48, threads: 0 });
  await prepareData({ stage: 'dpo', data: files.dpo, tokenizerDir: tokenizer, out: out.dpo, maxSeqLen: 48, threads: 0 });
  return { dir, tokenizer, config, ...out };
}

/** Run options for a short, quiet run; override what a test needs. */
export function runOptions(f: TrainFixture, o: Partial<RunOptions>): RunOptions {
  return {
    stage: 'pretrain',
    modelConfig: f.config,
    init: null,
    data: f.pretrain,
    tokenizer: f.tokenizer,
    out: path.join(f.dir, 'run'),
    batchSize: 4,
    seqLen: 32,
    accum: 1,
    lr: 3e-3,
    minLr: null,
    warmup: 1,
    epochs: 1,
    maxSteps: 6,
    weightDecay: 0,
    optimizer: 'adamw',
    clip: 1,
    seed: 1,
    saveEvery: 3,
    keep: 2,
    logEvery: 1,
    device: 'cpu',
    resume: null,
    auxLoss: false,
    lora: { rank: 4, alpha: 4, targets: ['wq', 'wo'] },
    dpoBeta: 0.1,
    dpoLogp: 'sum',
    quiet: true,
    ...o,
  };
}
