// Tokenizer vs the golden ids of the MiniMind fixtures and vs Hugging Face tokenizers (the `tokenizers` npm
// package, a dev dependency used only as an oracle) on a large deterministic corpus of awkward text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '../lib/tokenizer';
import { GPT2_SPLIT } from '../lib/tokenizer/pretokenize';
import { makeCorpus } from './tokenizer-corpus';

const FIXTURES = path.join(__dirname, '../../shared/fixtures/minimind');
const DIRS: Record<string, string> = {
  v1: 'v1_2024-10-15_6861d1a',
  'minimind2_2025-04-26': 'minimind2_2025-04-26_274483c',
  minimind3_latest: 'latest_minimind3_2026-03-24_101d7df',
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const golden: any = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tokenizer_golden_ids.json'), 'utf8'));

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('tokenizers') as typeof import('tokenizers');

describe.each(Object.keys(DIRS))('%s tokenizer', (name) => {
  const dir = path.join(FIXTURES, DIRS[name]);
  const tok = Tokenizer.load(dir);
  const oracle = hf.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));

  test('golden encode/decode examples', () => {
    expect(tok.vocabSize).toBe(golden[name].vocab_size_with_added);
    for (const ex of golden[name].encode_examples) {
      expect(tok.encode(ex.text)).toEqual(ex.ids);
      expect(ex.ids.map((id: number) => tok.idToToken(id))).toEqual(ex.tokens);
      expect(tok.decode(ex.ids)).toBe(ex.decoded);
    }
  });

  test('golden chat examples', () => {
    for (const ex of golden[name].chat_examples) {
      const rendered = tok.applyChatTemplate(ex.messages, ex.add_generation_prompt);
      expect(rendered).toBe(ex.rendered);
      expect(tok.encode(rendered)).toEqual(ex.ids);
    }
  });

  test('encode and decode equal Hugging Face tokenizers on a varied corpus', async () => {
    const texts = makeCorpus(1234, 600, (id) => tok.decode([id]), tok.vocabSize);
    for (const text of texts) {
      const expected = (await oracle.encode(text, null, { addSpecialTokens: false })).getIds();
      const ids = tok.encode(text);
      if (ids.join() !== expected.join()) expect({ text, ids }).toEqual({ text, ids: expected });
      expect(tok.decode(ids)).toBe(await oracle.decode(expected, false));
    }
  });
});
