// `minimind-native chat --model DIR`: an interactive, streaming chat in the terminal (works in a pipe too).
// Commands: /reset clears the history, /exit (or end of input) quits.
import * as readline from 'node:readline';
import type { Argv, CommandModule } from 'yargs';
import { generate } from '../infer/generate';
import { loadModelFolder } from '../io/model-folder';
import { contextLength } from '../nn/config';
import { checkWeightDtype, DTYPE_OPTION } from '../infer/weights';
import { Tokenizer } from '../tokenizer';
import type { ChatMessage } from '../tokenizer/types';
import { applyLora } from '../train/lora';
import { applyRopeScaling, ROPE_SCALING_OPTIONS, RopeScalingArgs } from './rope-scaling';

interface ChatArgs extends RopeScalingArgs {
  model: string;
  system?: string;
  history: number;
  'max-new-tokens': number;
  temperature: number;
  'top-k': number;
  'top-p': number;
  'repetition-penalty': number;
  seed: number;
  lora?: string;
  dtype: string;
}

export const chatCommand: CommandModule<object, ChatArgs> = {
  command: 'chat',
  describe: 'Chat with a model folder in the terminal (streaming; /reset, /exit)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (with tokenizer files)' })
      .option('system', { type: 'string', describe: 'system prompt' })
      .option('history', { type: 'number', default: 0, describe: 'previous turns kept in the prompt' })
      .option('max-new-tokens', { type: 'number', default: 256 })
      .option('temperature', { type: 'number', default: 0.7 })
      .option('top-k', { type: 'number', default: 16 })
      .option('top-p', { type: 'number', default: 1 })
      .option('repetition-penalty', { type: 'number', default: 1 })
      .option('seed', { type: 'number', default: 1337 })
      .option('lora', { type: 'string', describe: 'apply a LoRA adapter folder' })
      .options(ROPE_SCALING_OPTIONS)
      .option('dtype', DTYPE_OPTION) as Argv<ChatArgs>,
  handler: async (argv) => {
    const model = loadModelFolder(argv.model, 'cpu', checkWeightDtype(argv.dtype, 'cpu'));
    if (argv.lora) applyLora(model, argv.lora);
    applyRopeScaling(model, argv);
    const tokenizer = Tokenizer.load(argv.model);
    const tty = process.stdin.isTTY;
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
    let turns: ChatMessage[] = [];
    let seed = argv.seed;
    if (tty) console.log('minimind-native chat: /reset clears the history, /exit quits');
    const ask = () => tty && process.stdout.write('\n> ');
    ask();
    try {
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/exit') break;
        if (text === '/reset') {
          turns = [];
          if (tty) console.log('(history cleared)');
          ask();
          continue;
        }
        if (!text) {
          ask();
          continue;
        }
        const kept = argv.history > 0 ? turns.slice(-2 * argv.history) : [];
        const messages: ChatMessage[] = [...(argv.system ? [{ role: 'system', content: argv.system }] : []), ...kept,
          { role: 'user', content: text }];
        let prompt = tokenizer.encode(tokenizer.applyChatTemplate(messages, true));
        // Keep the newest tokens when the conversation outgrows the context.
        const context = contextLength(model.cfg);
        const budget = context - Math.min(argv['max-new-tokens'], Math.floor(context / 2));
        if (prompt.length > budget) prompt = prompt.slice(prompt.length - budget);
        const stream = tokenizer.createStreamDecoder();
        const r = generate(model, prompt, {
          maxNewTokens: argv['max-new-tokens'],
          temperature: argv.temperature,
          topK: argv['top-k'],
          topP: argv['top-p'],
          repetitionPenalty: argv['repetition-penalty'],
          seed: seed++,
          eosIds: tokenizer.eosId >= 0 ? [tokenizer.eosId] : [],
          onToken: (id) => {
            process.stdout.write(stream.push(id));
          },
        });
        process.stdout.write(stream.flush() + '\n');
        turns.push({ role: 'user', content: text }, { role: 'assistant', content: tokenizer.decode(r.ids) });
        ask();
      }
    } finally {
      rl.close();
      model.dispose();
    }
  },
};
