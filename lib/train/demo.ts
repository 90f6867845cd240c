// The embedded demo: from nothing to a model that answers questions, on the CPU, in minutes.
//   data (generated, lib/demo) -> tokenizer (trained on it) -> prepared token files -> pretrain -> SFT
// Everything lives in one workspace folder (default ./minimind-demo); each piece is made once and reused, so
// `train pretrain` and `train sft` without data arguments use the same files the `demo` command makes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareData } from '../data';
import { HeldoutItem, scoreAnswer, writeDemoData } from '../demo';
import { generate } from '../infer/generate';
import { loadModelFolder } from '../io/model-folder';
import { Tokenizer } from '../tokenizer';
import { trainTokenizer } from '../tokenizer/train';

export const DEMO_WORKSPACE = 'minimind-demo';
export const DEMO_CONFIG = 'demo-tiny';
export const DEMO_VOCAB = 2048;
/** Rows of the demo's SFT data: its conversations are short (the longest, a hello and then a question, is under 60
 * tokens; test/demo-pipeline checks that none is cut), so short rows avoid training on padding. */
export const DEMO_SFT_LEN = 64;

export interface DemoPaths {
  root: string;
  data: string;
  tokenizer: string;
  pretrainBin: string;
  sftBin: string;
  dpoBin: string;
  heldout: string;
  pretrainOut: string;
  sftOut: string;
}

export function demoPaths(workspace = DEMO_WORKSPACE): DemoPaths {
  const root = path.resolve(workspace);
  const data = path.join(root, 'data');
  return {
    root,
    data,
    tokenizer: path.join(root, 'tokenizer'),
    pretrainBin: path.join(data, 'pretrain.bin'),
    sftBin: path.join(data, 'sft.bin'),
    dpoBin: path.join(data, 'dpo.bin'),
    heldout: path.join(data, 'heldout.jsonl'),
    pretrainOut: path.join(root, 'pretrain'),
    sftOut: path.join(root, 'sft'),
  };
}

const log = (quiet: boolean, m: string) => {
  if (!quiet) console.error(m);
};

/** Makes (once) the demo data, its tokenizer and the prepared token files. */
export async function ensureDemoData(workspace = DEMO_WORKSPACE, quiet = false): Promise<DemoPaths> {
  const p = demoPaths(workspace);
  const files = path.join(p.data, 'pretrain.jsonl');
  if (!fs.existsSync(files) || !fs.existsSync(p.heldout)) {
    log(quiet, `demo: writing the demo corpus to ${p.data}`);
    writeDemoData(p.data);
  }
  if (!fs.existsSync(path.join(p.tokenizer, 'tokenizer.json'))) {
    log(quiet, `demo: training a ${DEMO_VOCAB}-token BPE tokenizer`);
    await trainTokenizer({ files: [files], vocabSize: DEMO_VOCAB, out: p.tokenizer });
  }
  const jobs: [string, 'pretrain' | 'sft' | 'dpo', string, number][] = [
    ['pretrain.jsonl', 'pretrain', p.pretrainBin, 512],
    ['sft.jsonl', 'sft', p.sftBin, DEMO_SFT_LEN],
    ['dpo.jsonl', 'dpo', p.dpoBin, DEMO_SFT_LEN],
  ];
  for (const [src, stage, out, maxSeqLen] of jobs) {
    if (fs.existsSync(`${out}.json`)) continue;
    log(quiet, `demo: preparing ${stage} data`);
    await prepareData({ stage, data: path.join(p.data, src), tokenizerDir: p.tokenizer, out, maxSeqLen });
  }
  return p;
}

export interface DemoScore {
  accuracy: number;
  correct: number;
  total: number;
  samples: { question: string; answer: string; correct: boolean }[];
}

/** What `demo` prints at the end: a few sample answers (each on one line, spread over the held-out list so they
 * cover several topics and both languages), the held-out count and time, and `accuracy: N%`. */
export function demoReport(score: DemoScore, seconds: number, sampleCount = 6): string {
  const n = score.samples.length;
  const picked = Array.from({ length: Math.min(sampleCount, n) }, (_, i) => score.samples[Math.floor((i * n) / sampleCount)]);
  const samples = picked.map((s) =>
    `  Q: ${s.question}\n  A: ${s.answer.trim().replace(/\s*\n\s*/g, ' ')}  [${s.correct ? 'right' : 'wrong'}]`);
  return ['sample answers:', ...samples, `held-out: ${score.correct}/${score.total} in ${seconds.toFixed(0)} s`,
    `accuracy: ${Math.round(100 * score.accuracy)}%`].join('\n');
}

/** Greedy answers to the held-out questions, scored by their keywords. */
export function scoreHeldout(modelDir: string, heldoutFile: string, limit = Infinity): DemoScore {
  const model = loadModelFolder(modelDir);
  const tokenizer = Tokenizer.load(modelDir);
  try {
    const items = fs.readFileSync(heldoutFile, 'utf8').split('\n').filter(Boolean)
      .map((l) => JSON.parse(l) as HeldoutItem).slice(0, limit);
    const samples = items.map((item) => {
      const prompt = tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: item.question }], true));
      const r = generate(model, prompt, { maxNewTokens: 48, temperature: 0, eosIds: [tokenizer.eosId] });
      const answer = tokenizer.decode(r.ids);
      return { question: item.question, answer, correct: scoreAnswer(answer, item) };
    });
    const correct = samples.filter((s) => s.correct).length;
    return { accuracy: samples.length ? correct / samples.length : 0, correct, total: samples.length, samples };
  } finally {
    model.dispose();
  }
}
