// Tokenizer training: the native merge loop against a plain reference trainer (recount every pair every step),
// determinism, the file layout, and Hugging Face tokenizers (the `tokenizers` npm package, dev dependency)
// loading the result and encoding a varied corpus exactly as we do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer, trainTokenizer, V1_CHAT_TEMPLATE, type TrainProgress } from '../lib/tokenizer';
import { byteToChar } from '../lib/tokenizer/bytes';
import { GPT2_SPLIT } from '../lib/tokenizer/pretokenize';
import { makeBenchText } from '../bench/tokenizer';
import { makeCorpus } from './tokenizer-corpus';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('tokenizers') as typeof import('tokenizers');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-train-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeJsonl(file: string, texts: string[]): string {
  fs.writeFileSync(file, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  return file;
}

/** The reference: words as byte-token arrays; each step recounts all pairs and merges the best one everywhere. */
function referenceMerges(texts: string[], special: string[], vocabSize: number): [string, string][] {
  const tok = (b: number) => Buffer.from([b]).toString('latin1'); // a byte as a 1-char string (only compared)
  const counts = new Map<string, number>();
  // Pre-tokenization is not what this checks: use the library's GPT-2 split.
  for (const t of texts) for (const m of t.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  const words = [...counts].map(([w, c]) => ({ syms: [...Buffer.from(w, 'utf8')].map(tok), c }));
  // Ids decide ties: specials, then bytes by the code point of their GPT-2 character, then merges in order.
  const order = [...Array(256).keys()].sort((a, b) => byteToChar[a].charCodeAt(0) - byteToChar[b].charCodeAt(0));
  const ids = new Map<string, number>(order.map((b, i) => [tok(b), special.length + i]));
  const merges: [string, string][] = [];
  while (ids.size + special.length < vocabSize) {
    const pairCounts = new Map<string, number>();
    for (const { syms, c } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = `${ids.get(syms[i])},${ids.get(syms[i + 1])}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + c);
      }
    }
    let best: number[] | undefined;
    let bestCount = 0;
    for (const [key, c] of pairCounts) {
      const p = key.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (p[0] < best[0] || (p[0] === best[0] && p[1] < best[1])))) {
        best = p;
        bestCount = c;
      }
    }
    if (!best) break;
    const byId = new Map([...ids].map(([s, i]) => [i, s]));
    const [a, b] = [byId.get(best[0])!, byId.get(best[1])!];
    merges.push([a, b]);
    if (!ids.has(a + b)) ids.set(a + b, ids.size + special.length);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) { out.push(a + b); i++; } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  return merges;
}

const latin1ToGpt2 = (s: string) => [...s].map((c) => byteToChar[c.charCodeAt(0)]).join('');

test('native merges equal the reference trainer on a small corpus', async () => {
  const texts = [...makeCorpus(5, 20), makeBenchText(3, 6000)];
  const file = writeJsonl(path.join(tmp, 'small.jsonl'), texts);
  const special = ['<unk>', '<s>', '</s>'];
  await trainTokenizer({ files: [file], vocabSize: 380, special, out: path.join(tmp, 'small') });
  const json = JSON.parse(fs.readFileSync(path.join(tmp, 'small/tokenizer.json'), 'utf8'));
  // The reference sees texts with the specials cut out, as the trainer does.
  const withoutSpecials = texts.flatMap((t) => t.split(/<unk>|<s>|<\/s>/));
  const expected = referenceMerges(withoutSpecials, special, 380).map(([a, b]) => [latin1ToGpt2(a), latin1ToGpt2(b)]);
  expect(json.model.merges).toEqual(expected);
});

describe('a 6400-token tokenizer trained on a few MB', () => {
  const special = ['<unk>', '<s>', '</s>'];
  const out = path.join(tmp, 'v6400');
  let file: string;
  const phases: TrainProgress[] = [];
  let seconds = 0;

  beforeAll(async () => {
    const texts: string[] = [];
    const bench = makeBenchText(21, 2e6);
    for (let i = 0; i < bench.length; i += 700) texts.push(bench.slice(i, i + 700));
    texts.push(...makeCorpus(77, 400));
    file = writeJsonl(path.join(tmp, 'corpus.jsonl'), texts);
    const t0 = performance.now();
    await trainTokenizer({ files: [file], vocabSize: 6400, special, out, onProgress: (p) => phases.push(p) });
    seconds = (performance.now() - t0) / 1e3;
    console.log(`trained 6400 tokens on ${(fs.statSync(file).size / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`);
  });

  test('layout: specials 0..2, bytes from "!" at 3, 6141 merges, v1 chat template', () => {
    const json = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8'));
    expect(json.added_tokens.map((t: { content: string; id: number }) => [t.content, t.id])).toEqual([['<unk>', 0], ['<s>', 1], ['</s>', 2]]);
    expect(json.model.vocab['!']).toBe(3);
    expect(json.model.vocab.A).toBe(35); // as in MiniMind v1's tokenizer
    expect(json.model.merges.length).toBe(6141);
    expect(Object.keys(json.model.vocab).length).toBe(6400);
    expect(config.chat_template).toBe(V1_CHAT_TEMPLATE);
    const v1 = JSON.parse(fs.readFileSync(path.join(__dirname, '../../shared/fixtures/minimind/v1_2024-10-15_6861d1a/tokenizer_config.json'), 'utf8'));
    expect(V1_CHAT_TEMPLATE).toBe(v1.chat_template);
    const tok = Tokenizer.load(out);
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([6400, 1, 2, 0]);
    expect(tok.applyChatTemplate([{ role: 'user', content: '你好' }], true)).toBe('<s>user\n你好</s>\n<s>assistant\n');
  });

  test('progress goes count → merge → write and ends complete', () => {
    expect(phases[0]).toEqual({ phase: 'count', done: 0, total: fs.statSync(file).size });
    expect(phases.at(-1)).toEqual({ phase: 'write', done: 1, total: 1 });
    expect(phases.find((p) => p.phase === 'merge' && p.done === 6141)).toBeDefined();
  });

  test('Hugging Face tokenizers loads it and encodes a varied corpus like we do', async () => {
    const tok = Tokenizer.load(out);
    const oracle = hf.Tokenizer.fromFile(path.join(out, 'tokenizer.json'));
    for (const text of makeCorpus(4321, 300, (id) => tok.decode([id]), tok.vocabSize)) {
      const expected = (await oracle.encode(text, null, { addSpecialTokens: false })).getIds();
      const ids = tok.encode(text);
      if (ids.join() !== expected.join()) expect({ text, ids }).toEqual({ text, ids: expected });
      expect(tok.decode(ids)).toBe(await oracle.decode(expected, false));
    }
  });

  test('deterministic: a smaller run on the same input repeats the first merges; reruns give identical files', async () => {
    const smaller = path.join(tmp, 'smaller');
    await trainTokenizer({ files: [file], vocabSize: 1000, special, out: smaller });
    const full = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')).model.merges;
    expect(JSON.parse(fs.readFileSync(path.join(smaller, 'tokenizer.json'), 'utf8')).model.merges).toEqual(full.slice(0, 1000 - 259));
    const small = writeJsonl(path.join(tmp, 'rerun.jsonl'), makeCorpus(9, 200));
    const runs = [path.join(tmp, 'rerun1'), path.join(tmp, 'rerun2')];
    for (const dir of runs) await trainTokenizer({ files: [small], vocabSize: 2000, special, out: dir });
    expect(fs.readFileSync(path.join(runs[1], 'tokenizer.json'), 'utf8')).toBe(fs.readFileSync(path.join(runs[0], 'tokenizer.json'), 'utf8'));
  });
});

test('plain text input, ChatML specials, and errors naming file and line', async () => {
  const txt = path.join(tmp, 'plain.txt');
  fs.writeFileSync(txt, makeBenchText(8, 30000));
  const r = await trainTokenizer({ files: [txt], vocabSize: 400, special: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], out: path.join(tmp, 'plain') });
  expect(r.vocabSize).toBe(400);
  const tok = Tokenizer.load(path.join(tmp, 'plain'));
  expect([tok.bosId, tok.eosId, tok.padId]).toEqual([1, 2, 0]);
  expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], true)).toBe(
    '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');

  const bad = path.join(tmp, 'bad.jsonl');
  fs.writeFileSync(bad, '{"text": "ok"}\n{"txt": 1}\n');
  await expect(trainTokenizer({ files: [bad], vocabSize: 300, out: path.join(tmp, 'bad') })).rejects.toThrow(`${bad}:2: expected {"text"`);
  fs.writeFileSync(bad, '{"text": "ok"}\n\n{oops\n');
  await expect(trainTokenizer({ files: [bad], vocabSize: 300, out: path.join(tmp, 'bad') })).rejects.toThrow(`${bad}:3: not valid JSON`);
  await expect(trainTokenizer({ files: [bad], vocabSize: 100, out: path.join(tmp, 'bad') })).rejects.toThrow('vocabSize must be');
});
