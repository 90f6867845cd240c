// `minimind-native eval loss --model DIR --data FILE [--seq-len N] [--train-on last|all] [--json]`
//   FILE: a prepared file (`data prepare`), a uint16 .bin, pretrain jsonl/text, or raw SFT data (MiniMind2 jsonl
//   {"conversations": [...]} or v1 CSV history,q,a), whose loss counts assistant tokens only, as the trainer's.
// `minimind-native eval ceval --model DIR --data DIR [--out DIR] [--json]`
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { openLoader, prepareData, readHeader } from '../data';
import { detectFormat, RecordStream } from '../data/source';
import { evalCeval } from '../eval/ceval';
import { evalMaskedLoss, evalTokenLoss, LossReport } from '../eval/loss';
import { loadModelFolder } from '../io/model-folder';
import { contextLength } from '../nn/config';
import { MiniMind } from '../nn/model';
import { Tokenizer } from '../tokenizer';
import { applyLora } from '../train/lora';
import { applyRopeScaling, ROPE_SCALING_OPTIONS, RopeScalingArgs } from './rope-scaling';

interface EvalArgs extends RopeScalingArgs {
  kind: 'loss' | 'ceval';
  model: string;
  data: string;
  'seq-len'?: number;
  'batch-size': number;
  'train-on'?: 'last' | 'all';
  out?: string;
  lora?: string;
  json: boolean;
}

/** Tokens of a pretrain file: a raw uint16 .bin (v1, or our prepared pretrain file) or jsonl/text tokenized. */
function readTokenStream(file: string, tokenizerDir: string): Uint16Array {
  if (file.endsWith('.jsonl') || file.endsWith('.txt')) {
    const tok = Tokenizer.load(tokenizerDir);
    const ids: number[] = [];
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let text = line;
      if (file.endsWith('.jsonl')) {
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch {
          throw new Error(`${file}:${i + 1}: not valid JSON`);
        }
        const t = typeof rec === 'string' ? rec : (rec as { text?: unknown })?.text;
        if (typeof t !== 'string') throw new Error(`${file}:${i + 1}: expected {"text": string}`);
        text = t;
      }
      ids.push(tok.bosId, ...tok.encode(text), tok.eosId);
    });
    return Uint16Array.from(ids);
  }
  const buf = fs.readFileSync(file);
  if (buf.length % 2) throw new Error(`${file}: a uint16 token file must have an even size (got ${buf.length} bytes)`);
  return new Uint16Array(buf.buffer, buf.byteOffset, buf.length / 2);
}

/** Whether a raw (unprepared) file holds SFT conversations: a jsonl whose first record has "conversations", or a
 * CSV with v1's q and a columns. */
async function isRawSft(file: string): Promise<boolean> {
  const format = detectFormat(file);
  if (format !== 'jsonl' && format !== 'csv') return false;
  const records = new RecordStream(file, format);
  for await (const group of records.groups()) {
    if (format === 'csv') return ['q', 'a'].every((c) => records.columns?.includes(c));
    try {
      const first: unknown = JSON.parse(group[0].text);
      return typeof first === 'object' && first !== null && 'conversations' in first;
    } catch {
      return false; // the pretrain path reports the bad line
    }
  }
  return false;
}

/** The loss the trainer would see: masked (assistant tokens) for SFT/DPO data, every token for pretraining. */
async function evalLoss(model: MiniMind, argv: EvalArgs): Promise<LossReport> {
  const { data, model: modelDir } = argv;
  const batchSize = argv['batch-size'];
  const rowLength = argv['seq-len'] ?? contextLength(model.cfg);
  const inOrder = { batchSize, shuffle: false, partialLastBatch: true };
  const header = fs.existsSync(`${data}.json`) ? readHeader(data).header : null;
  const rawSft = !header && await isRawSft(data);
  if (argv['train-on'] && !rawSft) {
    throw new Error(`--train-on applies to raw SFT data; ${data} is ${header ? `prepared ${header.stage} data (its masks are fixed)` : 'not SFT data'}`);
  }
  if (header && header.stage !== 'pretrain') return evalMaskedLoss(model, openLoader({ data, ...inOrder }));
  if (!rawSft) return evalTokenLoss(model, readTokenStream(data, modelDir), rowLength, batchSize);
  // Raw SFT rows are built by lib/data exactly as `data prepare --stage sft --max-seq-len ROW` builds them:
  // jsonl on the fly; CSV (multi-line records) prepared into a temporary folder, removed afterwards.
  const sft = { stage: 'sft' as const, seqLen: rowLength - 1, trainOn: argv['train-on'] };
  if (detectFormat(data) === 'jsonl') return evalMaskedLoss(model, openLoader({ data, ...inOrder, ...sft, tokenizer: Tokenizer.load(modelDir) }));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-eval-'));
  try {
    const out = path.join(tmp, 'sft.bin');
    await prepareData({ stage: 'sft', data, tokenizerDir: modelDir, out, maxSeqLen: rowLength, trainOn: argv['train-on'], strict: true, threads: 0 });
    return evalMaskedLoss(model, openLoader({ data: out, ...inOrder }));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <kind>',
  describe: 'Evaluate a model: loss (mean token loss, perplexity) or ceval (C-Eval multiple choice)',
  builder: (y: Argv) =>
    y
      .positional('kind', { choices: ['loss', 'ceval'] as const, type: 'string' })
      .option('model', { type: 'string', demandOption: true })
      .option('data', { type: 'string', demandOption: true, describe: 'loss: .bin, pretrain jsonl, SFT jsonl/CSV or a prepared file; ceval: folder of CSVs' })
      .option('seq-len', { type: 'number', describe: 'loss: window (or raw SFT row) length in tokens (default: the context, max_seq_len)' })
      .option('train-on', { choices: ['last', 'all'] as const,
        describe: 'loss on raw SFT data: the last answer or every assistant turn (default: all for jsonl, last for v1 CSV)' })
      .option('batch-size', { type: 'number', default: 8 })
      .option('out', { type: 'string', describe: 'ceval: folder for the result CSVs and test.log' })
      .option('lora', { type: 'string', describe: 'apply a LoRA adapter folder' })
      .options(ROPE_SCALING_OPTIONS)
      .option('json', { type: 'boolean', default: false }) as Argv<EvalArgs>,
  handler: async (argv) => {
    const model = loadModelFolder(argv.model);
    try {
      if (argv.lora) applyLora(model, argv.lora);
      applyRopeScaling(model, argv);
      if (argv.kind === 'loss') {
        const report = await evalLoss(model, argv);
        if (argv.json) console.log(JSON.stringify(report));
        else console.log(`mean loss ${report.mean_loss.toFixed(4)}, perplexity ${report.perplexity.toFixed(2)} over ${report.tokens} tokens`);
      } else {
        const tokenizer = Tokenizer.load(argv.model);
        const r = await evalCeval(model, tokenizer, argv.data, argv.out ?? null,
          argv.json || !process.stderr.isTTY ? undefined : (s, d, t) => process.stderr.write(`\r${s} ${d}/${t}   `));
        if (argv.json) console.log(JSON.stringify(r));
        else {
          for (const s of r.subjects) console.log(`${s.subject}: ${s.correct}/${s.total} = ${(100 * s.accuracy).toFixed(2)}%`);
          console.log(`total: ${r.correct}/${r.total} = ${(100 * r.accuracy).toFixed(2)}%`);
        }
      }
    } finally {
      model.dispose();
    }
  },
};
