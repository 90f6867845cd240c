// Tokenizer fixtures for the data tests: the MiniMind tokenizer folders, loaded with lib/tokenizer (which the
// tokenizer tests check against Hugging Face tokenizers), and loader references that `data prepare` workers use.
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { Tokenizer } from '../lib/tokenizer';
import type { TextTokenizer } from '../lib/tokenizer/types';

export const V1_TOKENIZER_DIR = path.join(__dirname, '../../shared/fixtures/minimind/v1_2024-10-15_6861d1a');
export const MINIMIND2_TOKENIZER_DIR = path.join(__dirname,
  '../../shared/fixtures/minimind/minimind2_2025-04-26_274483c');
export const FORMAT_SAMPLES_DIR = path.join(__dirname,
  '../../shared/fixtures/minimind/format_samples_unmerged_PR802_857bcbc');

export function loadTokenizer(dir: string): TextTokenizer {
  return Tokenizer.load(dir);
}

/** The reference to hand to `prepareData` so its workers load the tokenizer through this module. */
export const testTokenizerLoader = { module: __filename, exportPath: 'loadTokenizer' };

/** For the failure tests: loads on the main thread, throws in worker threads (a worker dying mid-run). */
export function loadTokenizerOnlyOnMainThread(dir: string): TextTokenizer {
  if (!isMainThread) throw new Error('simulated worker failure');
  return loadTokenizer(dir);
}
