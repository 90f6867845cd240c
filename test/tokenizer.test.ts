// Tokenizer vs the golden ids of the MiniMind fixtures and vs Hugging Face tokenizers (the `tokenizers` npm
// package, a dev dependency used only as an oracle) on a large deterministic corpus of awkward text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeParallel, Tokenizer } from '../lib/tokenizer';
import { rng } from '../bench/tokenizer';
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
    const texts = makeCorpus(1234, 400, (id) => tok.decode([id]), tok.vocabSize);
    for (const text of texts) {
      const expected = (await oracle.encode(text, null, { addSpecialTokens: false })).getIds();
      const ids = tok.encode(text);
      if (ids.join() !== expected.join()) expect({ text, ids }).toEqual({ text, ids: expected });
      expect(tok.decode(ids)).toBe(await oracle.decode(expected, false));
    }
  });
});

describe('variants of the v1 file vs Hugging Face tokenizers', () => {
  const v1Dir = path.join(FIXTURES, DIRS.v1);
  const base = JSON.parse(fs.readFileSync(path.join(v1Dir, 'tokenizer.json'), 'utf8'));
  const texts = [...makeCorpus(99, 250), 'the quick 管 the quick 管管'];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const variants: [string, (j: any) => void][] = [
    ['add_prefix_space true', (j) => { j.pre_tokenizer.add_prefix_space = true; }],
    ['lstrip/rstrip/single_word added tokens, a normalized added token', (j) => {
      j.added_tokens[1].lstrip = true;
      j.added_tokens[2].rstrip = true;
      j.added_tokens.push({ id: 6400, content: 'fox', single_word: true, lstrip: false, rstrip: false, normalized: false, special: false });
      j.added_tokens.push({ id: 6401, content: '</s></s>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
      // Outside the byte map (a space, CJK): the ByteLevel decoder must fall back to the token's own UTF-8.
      j.added_tokens.push({ id: 6402, content: 'the quick 管', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
    }],
    ['merges as ["a", "b"] pairs instead of "a b" strings', (j) => {
      j.model.merges = j.model.merges.map((m: string) => m.split(' '));
    }],
    ['Sequence [Split(regex), ByteLevel(use_regex false)]', (j) => {
      j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: ' ?\\p{L}+|\\p{N}{1,3}| ?[^\\p{L}\\p{N}]+' }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
    }],
  ];
  test.each(variants)('%s', async (_name, change) => {
    const json = structuredClone(base);
    change(json);
    const text = JSON.stringify(json);
    const tok = new Tokenizer({ tokenizerJson: text, configJson: null, name: 'variant' });
    const oracle = hf.Tokenizer.fromString(text);
    for (const t of texts) {
      const expected = (await oracle.encode(t, null, { addSpecialTokens: false })).getIds();
      const ids = tok.encode(t);
      if (ids.join() !== expected.join()) expect({ t: JSON.stringify(t).slice(0, 4000), ids }).toEqual({ t, ids: expected });
      expect(tok.decode(ids)).toBe(await oracle.decode(expected, false));
    }
  });
});

describe('decoding', () => {
  const tok = Tokenizer.load(path.join(FIXTURES, DIRS.minimind3_latest));
  const oracle = hf.Tokenizer.fromFile(path.join(FIXTURES, DIRS.minimind3_latest, 'tokenizer.json'));
  const r = rng(5);
  const randomIds = (n: number) => Array.from({ length: n }, () => Math.floor(r() * tok.vocabSize));

  test('random id sequences (broken UTF-8 included) decode like Hugging Face', async () => {
    for (let i = 0; i < 300; i++) {
      const ids = randomIds(1 + Math.floor(r() * 40));
      expect(tok.decode(ids)).toBe(await oracle.decode(ids, false));
    }
    expect(tok.decode([999999, 5])).toBe(await oracle.decode([999999, 5], false)); // unknown ids are skipped
  });

  test('the stream decoder emits whole characters only and adds up to decode()', () => {
    /** Pushes ids one by one; returns the pieces, checking that they add up to decode(ids). */
    const streamed = (ids: number[]) => {
      const stream = tok.createStreamDecoder();
      const pieces = ids.map((id) => stream.push(id));
      pieces.push(stream.flush());
      if (pieces.join('') !== tok.decode(ids)) expect(pieces.join('')).toBe(tok.decode(ids));
      return pieces;
    };
    const wellFormed = (s: string) => s === Buffer.from(s, 'utf8').toString('utf8'); // no lone surrogates
    for (const text of makeCorpus(17, 200)) {
      const pieces = streamed(tok.encode(text));
      if (!pieces.every(wellFormed)) expect(pieces).toEqual(pieces.map((p) => Buffer.from(p, 'utf8').toString()));
      // Text without lone surrogates or U+FFFD of its own never streams a U+FFFD.
      if (!/[\ud800-\udfff\ufffd]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
        expect(pieces.filter((p) => p.includes('\ufffd'))).toEqual([]);
      }
    }
    for (let i = 0; i < 300; i++) streamed(randomIds(1 + Math.floor(r() * 30)));
    // "😀" is 4 bytes spread over several tokens: nothing comes out until the last one.
    const emoji = tok.encode('😀');
    expect(emoji.length).toBeGreaterThan(1);
    const stream = tok.createStreamDecoder();
    expect(emoji.map((id) => stream.push(id))).toEqual([...emoji.slice(1).map(() => ''), '😀']);
  });
});

describe('loading', () => {
  test('a tokenizer.json file path, special ids from the config, clear errors', () => {
    const dir = path.join(FIXTURES, DIRS['minimind2_2025-04-26']);
    const tok = Tokenizer.load(path.join(dir, 'tokenizer.json'));
    expect([tok.bosId, tok.eosId, tok.padId, tok.unkId]).toEqual([1, 2, 0, 0]);
    const v1 = Tokenizer.load(path.join(FIXTURES, DIRS.v1));
    expect([v1.bosId, v1.eosId, v1.padId, v1.unkId]).toEqual([1, 2, -1, 0]); // v1's pad_token is null
    expect(() => new Tokenizer({ tokenizerJson: '{"model": {"type": "Unigram"}}', configJson: null, name: 'x.json' }))
      .toThrow('x.json: model.type is "Unigram"; only BPE is supported');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    json.model.merges[7] = 'nospace';
    expect(() => new Tokenizer({ tokenizerJson: JSON.stringify(json), configJson: null, name: 'y.json' }))
      .toThrow('model.merges[7]: "nospace" is not "left right"');
  });
});

test('encodeParallel (worker threads) equals encode', async () => {
  const tok = Tokenizer.load(path.join(FIXTURES, DIRS.v1));
  const texts = makeCorpus(3, 100);
  expect(await encodeParallel(tok, texts, 2)).toEqual(tok.encodeBatch(texts));
});

describe('chat templates without rendered fixtures (expected strings read off the templates, spec §2.3)', () => {
  const withConfig = (tokenizerDir: string, configDir: string) => new Tokenizer({
    tokenizerJson: fs.readFileSync(path.join(FIXTURES, tokenizerDir, 'tokenizer.json'), 'utf8'),
    configJson: fs.readFileSync(path.join(FIXTURES, configDir, 'tokenizer_config.json'), 'utf8'),
    name: configDir,
  });

  test('MiniMind2 2025-02-09: <s>system block with the default system prompt', () => {
    const tok = withConfig(DIRS.v1, 'minimind2_2025-02-09_58e3af0');
    expect(tok.applyChatTemplate([{ role: 'user', content: '你好' }], true))
      .toBe('<s>system\n你是 MiniMind，是一个有用的人工智能助手。</s>\n<s>user\n你好</s>\n<s>assistant\n');
    expect(tok.padId).toBe(0);
  });

  test('MiniMind2 2025-10-17: enable_thinking=false, tools, tool calls and tool responses', () => {
    const tok = withConfig(DIRS['minimind2_2025-04-26'], 'minimind2_2025-10-17_4e35fb9');
    expect(tok.applyChatTemplate([{ role: 'user', content: '你好' }], true, { enable_thinking: false })).toBe(
      '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n' +
      '<|im_start|>assistant\n<think>\n\n</think>\n\n');
    const tools = [{ type: 'function', function: { name: 'f', parameters: {} } }];
    const messages = [
      { role: 'user', content: '天气?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: { city: '北京' } } }] },
      { role: 'tool', content: '晴' },
    ];
    expect(tok.applyChatTemplate(messages, true, { tools })).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
      '{"type": "function", "function": {"name": "f", "parameters": {}}}\n</tools>\n\n' +
      'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
      '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\n天气?<|im_end|>\n' +
      '<|im_start|>assistant\n<tool_call>\n{"name": "f", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\n<tool_response>\n晴\n</tool_response><|im_end|>\n<|im_start|>assistant\n');
  });

  test('minimind-3: open_thinking and reasoning_content', () => {
    const tok = Tokenizer.load(path.join(FIXTURES, DIRS.minimind3_latest));
    expect(tok.applyChatTemplate([{ role: 'user', content: 'Q' }], true, { open_thinking: true }))
      .toBe('<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n');
    const messages = [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A', reasoning_content: '\nR\n' }];
    expect(tok.applyChatTemplate(messages, false))
      .toBe('<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n');
  });
});
