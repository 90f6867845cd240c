// Test-only TextTokenizer over the pure-JS `@huggingface/tokenizers` (encode/decode) and `@huggingface/jinja`
// (chat template), loaded from a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json).
// The data tests use it until lib/tokenizer exists; `data prepare` workers load it by module path, so it is a
// plain exported function `loadHfTokenizer(dir)`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { ChatMessage, TextTokenizer } from '../lib/tokenizer/types';

// Both packages are ES modules with CommonJS builds; TypeScript (module Node16) refuses a typed import of an
// ES module from CommonJS, so require them with the few signatures used here.
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (json: object, config: object) => HfTokenizer };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Template } = require('@huggingface/jinja') as { Template: new (source: string) => {
  render(context: Record<string, unknown>): string } };

export const V1_TOKENIZER_DIR = path.join(__dirname, '../../shared/fixtures/minimind/v1_2024-10-15_6861d1a');
export const MINIMIND2_TOKENIZER_DIR = path.join(__dirname,
  '../../shared/fixtures/minimind/minimind2_2025-04-26_274483c');
export const FORMAT_SAMPLES_DIR = path.join(__dirname,
  '../../shared/fixtures/minimind/format_samples_unmerged_PR802_857bcbc');

interface TokenizerConfig {
  chat_template?: string;
  bos_token?: string | null;
  eos_token?: string | null;
  pad_token?: string | null;
}

export function loadHfTokenizer(dir: string): TextTokenizer {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
  const hf = new Tokenizer(json, config);
  const template = config.chat_template ? new Template(config.chat_template) : undefined;
  const idOf = (token: string | null | undefined) => (token ? hf.token_to_id(token) ?? -1 : -1);
  return {
    vocabSize: hf.get_vocab(true).size,
    bosId: idOf(config.bos_token),
    eosId: idOf(config.eos_token),
    padId: idOf(config.pad_token),
    encode: (text) => hf.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => hf.decode(Array.from(ids), { skip_special_tokens: false }),
    tokenToId: (token) => hf.token_to_id(token),
    applyChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean): string {
      if (!template) throw new Error(`${dir}: tokenizer_config.json has no chat_template`);
      return template.render({ messages, add_generation_prompt: addGenerationPrompt,
        bos_token: config.bos_token ?? '', eos_token: config.eos_token ?? '' });
    },
  };
}

/** The reference to hand to `prepareData` so its workers load this adapter. */
export const hfTokenizerLoader = { module: __filename, exportPath: 'loadHfTokenizer' };

/** For the failure tests: loads on the main thread, throws in worker threads (a worker dying mid-run). */
export function loadHfTokenizerOnlyOnMainThread(dir: string): TextTokenizer {
  if (!isMainThread) throw new Error('simulated worker failure');
  return loadHfTokenizer(dir);
}
