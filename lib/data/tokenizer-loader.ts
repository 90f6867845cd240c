// How data preparation gets a tokenizer inside worker threads. Functions cannot cross threads, so the loader is
// named by module path and export path (`{ module, exportPath: 'Tokenizer.load' }`); each worker requires the
// module and calls `loader(dir)`, which returns a TextTokenizer (or a promise of one).
import * as path from 'node:path';
import type { TextTokenizer } from '../tokenizer/types';

export interface TokenizerLoaderRef {
  /** Absolute module path (require()-able from any thread). */
  module: string;
  /** Dotted path to the loader function in the module's exports, e.g. 'Tokenizer.load'. */
  exportPath: string;
}

/** lib/tokenizer's `Tokenizer.load(dir)`, required only when first used. */
export const defaultTokenizerLoader: TokenizerLoaderRef = {
  module: path.join(__dirname, '..', 'tokenizer'),
  exportPath: 'Tokenizer.load',
};

export async function loadTokenizerWith(ref: TokenizerLoaderRef, dir: string): Promise<TextTokenizer> {
  let owner: unknown;
  let target: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    target = require(ref.module);
  } catch (e) {
    throw new Error(`cannot load the tokenizer module ${ref.module}: ${(e as Error).message}`);
  }
  for (const key of ref.exportPath.split('.')) {
    owner = target;
    target = (target as Record<string, unknown> | undefined)?.[key];
  }
  if (typeof target !== 'function') throw new Error(`${ref.module} has no function '${ref.exportPath}'`);
  return (await (target as (dir: string) => TextTokenizer | Promise<TextTokenizer>).call(owner, dir));
}
