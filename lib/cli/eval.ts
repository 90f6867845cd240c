// `minimind-native eval loss --model DIR --data FILE [--seq-len N] [--json]`
// `minimind-native eval ceval --model DIR --data DIR [--out DIR] [--json]`
import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { openLoader, readHeader } from '../data';
import { evalCeval } from '../eval/ceval';
import { evalMaskedLoss, evalTokenLoss } from '../eval/loss';
import { loadModelFolder } from '../io/model-folder';
import { Tokenizer } from '../tokenizer';
import { applyLora } from '../train/lora';

interface EvalArgs {
  kind: 'loss' | 'ceval';
  model: string;
  data: string;
  'seq-len'?: number;
  'batch-size': number;
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

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <kind>',
  describe: 'Evaluate a model: loss (mean token loss, perplexity) or ceval (C-Eval multiple choice)',
  builder: (y: Argv) =>
    y
      .positional('kind', { choices: ['loss', 'ceval'] as const, type: 'string' })
      .option('model', { type: 'string', demandOption: true })
      .option('data', { type: 'string', demandOption: true, describe: 'loss: .bin/jsonl/prepared sft file; ceval: folder of CSVs' })
      .option('seq-len', { type: 'number', describe: 'loss: window length in tokens (default: max_seq_len)' })
      .option('batch-size', { type: 'number', default: 8 })
      .option('out', { type: 'string', describe: 'ceval: folder for the result CSVs and test.log' })
      .option('lora', { type: 'string', describe: 'apply a LoRA adapter folder' })
      .option('json', { type: 'boolean', default: false }) as Argv<EvalArgs>,
  handler: async (argv) => {
    const model = loadModelFolder(argv.model);
    try {
      if (argv.lora) applyLora(model, argv.lora);
      if (argv.kind === 'loss') {
        const header = fs.existsSync(`${argv.data}.json`) ? readHeader(argv.data).header : null;
        let report;
        if (header && header.stage !== 'pretrain') {
          // SFT/DPO data: the loss on the masked (assistant) tokens only.
          report = evalMaskedLoss(model, openLoader({ data: argv.data, batchSize: argv['batch-size'], shuffle: false, partialLastBatch: true }));
        } else {
          report = evalTokenLoss(model, readTokenStream(argv.data, argv.model), argv['seq-len'] ?? model.cfg.max_seq_len, argv['batch-size']);
        }
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
