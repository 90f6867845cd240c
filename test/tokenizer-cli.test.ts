// The `tokenizer` CLI handlers with injected streams: encode/decode in plain and jsonl modes, errors naming the
// line, and training through the same entry point the command uses.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { decodeStream, encodeStream, runTrain } from '../lib/cli/tokenizer';
import { Tokenizer } from '../lib/tokenizer';
import { makeBenchText } from '../bench/tokenizer';

const V1 = path.join(__dirname, '../../shared/fixtures/minimind/v1_2024-10-15_6861d1a');
const tok = Tokenizer.load(V1);

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { chunks.push(String(chunk)); done(); } });
  return { stream, text: () => chunks.join('') };
}

const run = async (fn: typeof encodeStream, input: string, jsonl: boolean) => {
  const out = sink();
  await fn(tok, Readable.from([input]), out.stream, jsonl);
  return out.text();
};

test('plain encode prints space-separated ids per line; plain decode reverses it', async () => {
  const ids = await run(encodeStream, '你好\nHello world\n\n<s>assistant\n', false);
  expect(ids).toBe('5134\n42 392 338 1636\n\n1 1078 538 501\n');
  expect(await run(decodeStream, ids, false)).toBe('你好\nHello world\n\n<s>assistant\n');
});

test('jsonl encode/decode: strings or {"text"} in, {"ids"} out, and back', async () => {
  const ids = await run(encodeStream, '"a\\nb"\n{"text": "你好，世界！"}\n\n', true);
  expect(ids).toBe('{"ids":[67,201,68]}\n{"ids":[5134,270,2219,2207]}\n');
  expect(await run(decodeStream, ids + '[5134]\n', true)).toBe('{"text":"a\\nb"}\n{"text":"你好，世界！"}\n{"text":"你好"}\n');
});

test('bad lines are errors naming the line', async () => {
  await expect(run(encodeStream, '"ok"\n{"txt": 1}\n', true)).rejects.toThrow('stdin:2: expected a JSON string or {"text": "..."}');
  await expect(run(encodeStream, '"ok"\n"ok"\n{oops\n', true)).rejects.toThrow('stdin:3: not valid JSON');
  await expect(run(decodeStream, '1 2\n3 x\n', false)).rejects.toThrow('stdin:2: "x" is not a token id (0..6399)');
  await expect(run(decodeStream, '1 6400\n', false)).rejects.toThrow('stdin:1: 6400 is not a token id');
  await expect(run(decodeStream, '{"ids": [1, -1]}\n', true)).rejects.toThrow('stdin:1: -1 is not a token id');
  await expect(run(decodeStream, '{"text": "x"}\n', true)).rejects.toThrow('stdin:1: expected {"ids": [...]}');
});

test('train through the command handler, then encode with the result', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-cli-'));
  try {
    const data = path.join(dir, 'data.jsonl');
    fs.writeFileSync(data, makeBenchText(5, 50000).match(/[^]{1,300}/g)!.map((text) => JSON.stringify({ text })).join('\n'));
    const errors = jest.spyOn(console, 'error').mockImplementation(() => {});
    const result = await runTrain({ action: 'train', data: [data], 'vocab-size': 600, special: '<unk>,<s>,</s>',
      out: path.join(dir, 'tok'), jsonl: false, progress: false });
    expect(errors.mock.calls[0][0]).toMatch(/^trained 600 tokens/);
    errors.mockRestore();
    expect(result.vocabSize).toBe(600);
    const trained = Tokenizer.load(path.join(dir, 'tok', 'tokenizer.json'));
    expect(trained.decode(trained.encode('<s>user\n你好</s>'))).toBe('<s>user\n你好</s>');
    await expect(runTrain({ action: 'train', 'vocab-size': 600, special: '', jsonl: false, progress: false }))
      .rejects.toThrow('--data FILE... is required');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
