// `minimind-native generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [sampling options] [--stop TEXT]... [--device cpu|cuda] [--json]`
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { generate } from '../infer/generate';
import { StopStringFilter } from '../infer/stop';
import { loadModelFolder } from '../io/model-folder';
import { checkWeightDtype, DTYPE_OPTION } from '../infer/weights';
import { Tokenizer } from '../tokenizer';
import { applyLora } from '../train/lora';
import { applyRopeScaling, ROPE_SCALING_OPTIONS, RopeScalingArgs } from './rope-scaling';

interface GenerateArgs extends RopeScalingArgs {
  model: string;
  prompt?: string;
  'prompt-ids'?: string;
  'max-new-tokens': number;
  temperature: number;
  'top-k': number;
  'top-p': number;
  'repetition-penalty': number;
  'penalty-form': 'signed' | 'divide';
  seed: number;
  lora?: string;
  stop?: string[];
  dtype: string;
  device: 'cpu' | 'cuda';
  json: boolean;
}

export function parseIds(s: string, what: string): number[] {
  const ids = s.split(',').map((v) => v.trim()).filter(Boolean).map(Number);
  const bad = ids.findIndex((v) => !Number.isInteger(v) || v < 0);
  if (bad >= 0 || !ids.length) throw new Error(`${what}: expected comma-separated token ids, got "${s}"`);
  return ids;
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Continue a prompt with a model folder',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder' })
      .option('prompt', { type: 'string', describe: 'prompt text (tokenized with the model folder\'s tokenizer)' })
      .option('prompt-ids', { type: 'string', describe: 'prompt token ids, comma-separated' })
      .option('max-new-tokens', { type: 'number', default: 128 })
      .option('temperature', { type: 'number', default: 0.7, describe: '0 = greedy' })
      .option('top-k', { type: 'number', default: 0, describe: '0 = off' })
      .option('top-p', { type: 'number', default: 1, describe: '1 = off' })
      .option('repetition-penalty', { type: 'number', default: 1 })
      .option('penalty-form', { choices: ['signed', 'divide'] as const, default: 'signed' as const,
        describe: 'signed: divide positive logits, multiply negative ones; divide: MiniMind v1' })
      .option('seed', { type: 'number', default: 0 })
      .option('lora', { type: 'string', describe: 'apply a LoRA adapter folder' })
      .options(ROPE_SCALING_OPTIONS)
      .option('stop', { type: 'string', array: true, describe: 'end when the text contains TEXT (repeatable; TEXT is not printed)' })
      .option('dtype', DTYPE_OPTION)
      .option('device', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const,
        describe: 'where the model runs (cuda: bf16 weights, activations and KV cache, fp32 math)' })
      .option('json', { type: 'boolean', default: false, describe: 'print {"ids": [...], "text": ..., "finish_reason": ...}' })
      .check((a) => {
        if ((a.prompt === undefined) === (a['prompt-ids'] === undefined)) throw new Error('give exactly one of --prompt and --prompt-ids');
        return true;
      }) as Argv<GenerateArgs>,
  handler: (argv) => {
    const model = loadModelFolder(argv.model, argv.device, checkWeightDtype(argv.dtype, argv.device));
    try {
      if (argv.lora) applyLora(model, argv.lora);
      applyRopeScaling(model, argv);
      const tokenizer = fs.existsSync(path.join(argv.model, 'tokenizer.json')) ? Tokenizer.load(argv.model) : null;
      let prompt: number[];
      if (argv['prompt-ids'] !== undefined) prompt = parseIds(argv['prompt-ids'], '--prompt-ids');
      else {
        if (!tokenizer) throw new Error(`${argv.model}: no tokenizer.json, so --prompt cannot be tokenized (use --prompt-ids)`);
        prompt = tokenizer.encode(argv.prompt!);
      }
      const eos = tokenizer && tokenizer.eosId >= 0 ? [tokenizer.eosId] : [];
      const stops = argv.stop ?? [];
      if (stops.length && !tokenizer) throw new Error(`${argv.model}: no tokenizer.json, so --stop strings cannot be matched`);
      // Text is decoded as it arrives (for streaming and stop strings); --json prints it once at the end.
      const stream = tokenizer ? tokenizer.createStreamDecoder() : null;
      const filter = new StopStringFilter(stops);
      const show = (text: string) => {
        if (!argv.json) process.stdout.write(text);
      };
      const result = generate(model, prompt, {
        maxNewTokens: argv['max-new-tokens'],
        temperature: argv.temperature,
        topK: argv['top-k'],
        topP: argv['top-p'],
        repetitionPenalty: argv['repetition-penalty'],
        penaltyForm: argv['penalty-form'],
        seed: argv.seed,
        eosIds: eos,
        onToken: (id) => {
          if (!stream) return;
          show(filter.push(stream.push(id)));
          return !filter.stopped; // false ends generation with finish_reason "stop"
        },
      });
      if (stream) show(filter.push(stream.flush()) + filter.flush());
      // ids: every generated token (after a stop string, the last one holds it); text: cut before the stop string.
      if (argv.json) console.log(JSON.stringify({ ids: result.ids, text: filter.full, finish_reason: result.finishReason }));
      else if (stream) show('\n');
      else console.log(result.ids.join(' '));
    } finally {
      model.dispose();
    }
  },
};
