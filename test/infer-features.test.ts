// Inference features: stop strings (the shared filter and `generate --stop`), RoPE scaling past max_seq_len
// (library and CLI flags), and `eval loss` on raw SFT data (equal to the loss on the same data prepared first).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from '../lib/infer/generate';
import { StopStringFilter } from '../lib/infer/stop';
import { loadModelFolder } from '../lib/io/model-folder';
import { contextLength, resolveConfig } from '../lib/nn/config';
import { createServer } from '../lib/serve/server';
import { Tokenizer } from '../lib/tokenizer';
import { makeModelFolder } from './serve-fixture';

const ROOT = path.join(__dirname, '..');
let model: string;
let work: string;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.js'), path.join(ROOT, 'bin/cli.ts'), ...args],
    { encoding: 'utf8', cwd: work, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  model = await makeModelFolder(64);
  work = path.dirname(model);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Feeds pieces through a filter; returns what was shown, piece by piece, and the filter. */
function stream(stops: string[], pieces: string[]): { shown: string[]; filter: StopStringFilter } {
  const filter = new StopStringFilter(stops);
  const shown = pieces.map((p) => filter.push(p));
  shown.push(filter.flush());
  return { shown, filter };
}

describe('StopStringFilter', () => {
  test('without a match everything is shown; a partial match is held until decided', () => {
    const { shown, filter } = stream(['</s>'], ['ab', 'c<', '/x', 'y']);
    expect(shown).toEqual(['ab', 'c', '</x', 'y', '']);
    expect(filter.stopped).toBe(false);
    expect(filter.full).toBe('abc</xy');
  });

  test('a stop string split across pieces ends the text before it; nothing after is shown', () => {
    const { shown, filter } = stream(['</s>'], ['hello <', '/', 's> more', 'after']);
    expect(shown).toEqual(['hello ', '', '', '', '']);
    expect(filter.stopped).toBe(true);
    expect(filter.full).toBe('hello ');
  });

  test('the earliest of several stop strings wins; the longest partial match is held', () => {
    expect(stream(['bc', 'ab'], ['xabc']).filter.full).toBe('x');
    // "ab" could start "abc" (held whole), "b" alone could start "bd".
    const { shown } = stream(['abc', 'bd'], ['xab', 'd']);
    expect(shown).toEqual(['x', 'a', '']);
  });

  test('a piece that completes a stop string shows the text before it', () => {
    expect(stream(['STOP'], ['one two ST', 'OP three']).shown).toEqual(['one two ', '', '']);
    expect(stream([''], ['kept']).shown).toEqual(['kept', '']); // empty stop strings are ignored
  });

  test('multi-byte UTF-8 across token boundaries: ids decoded by the stream decoder, then filtered', () => {
    const tok = Tokenizer.load(model);
    const text = '你好，世界。再见😀吧';
    const ids = tok.encode(text);
    expect(ids.length).toBeGreaterThan(text.length / 2); // a 512-token BPE splits characters into byte tokens
    for (const stop of ['世界', '😀', '。再', '吧']) {
      const decoder = tok.createStreamDecoder();
      const filter = new StopStringFilter([stop]);
      let shown = '';
      for (const id of ids) {
        shown += filter.push(decoder.push(id));
        expect(text.startsWith(shown)).toBe(true); // never a broken character nor text past the stop
        if (filter.stopped) break;
      }
      expect(filter.stopped).toBe(true);
      expect(shown).toBe(text.slice(0, text.indexOf(stop)));
    }
  });
});

describe('generate --stop', () => {
  test('ends at the stop string, prints and returns the text before it, finish_reason "stop"', () => {
    const base = ['generate', '--model', model, '--prompt', 'The capital of', '--temperature', '0', '--max-new-tokens', '24'];
    const plain = JSON.parse(cli([...base, '--json']).out);
    const text: string = plain.text;
    expect(text.length).toBeGreaterThan(8);
    const stop = text.slice(5, 8);
    const expected = text.slice(0, text.indexOf(stop));
    const r = cli([...base, '--json', '--stop', 'never-seen', '--stop', stop]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.text).toBe(expected);
    expect(out.finish_reason).toBe('stop');
    expect(plain.ids.slice(0, out.ids.length)).toEqual(out.ids);
    expect(out.ids.length).toBeLessThan(plain.ids.length);
    const streamed = cli([...base, '--stop', stop]);
    expect(streamed.code).toBe(0);
    expect(streamed.out).toBe(expected + '\n');
  });

  test('--stop needs a tokenizer, so --prompt-ids on a folder without one fails clearly', () => {
    const bare = path.join(work, 'bare');
    fs.mkdirSync(bare, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(model, f), path.join(bare, f));
    const r = cli(['generate', '--model', bare, '--prompt-ids', '1,2', '--stop', 'x']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/no tokenizer\.json.*--stop/);
  });
});

describe('eval loss on raw SFT data', () => {
  const conversations = [
    [{ role: 'user', content: 'What is the capital of France?' }, { role: 'assistant', content: 'Paris.' }],
    [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue, like the sky.' }],
    [{ role: 'user', content: '你好' }, { role: 'assistant', content: '你好！有什么可以帮你？' }],
  ];
  const evalJson = (data: string, ...extra: string[]) => {
    const r = cli(['eval', 'loss', '--model', model, '--data', data, '--batch-size', '2', '--json', ...extra]);
    if (r.code !== 0) throw new Error(r.err);
    return JSON.parse(r.out);
  };
  const prepared = (data: string, out: string, ...extra: string[]) => {
    const r = cli(['data', 'prepare', '--stage', 'sft', '--data', data, '--tokenizer', model, '--out', path.join(work, out),
      '--max-seq-len', '64', '--threads', '0', ...extra]);
    if (r.code !== 0) throw new Error(r.err);
    return evalJson(path.join(work, out));
  };

  test('jsonl conversations: equals the loss via an explicitly prepared file, for --train-on all and last', () => {
    const file = path.join(work, 'sft.jsonl');
    fs.writeFileSync(file, conversations.map((c) => JSON.stringify({ conversations: c })).join('\n') + '\n\n');
    const all = evalJson(file);
    expect(all).toEqual(prepared(file, 'sft-all.bin'));
    expect(all.tokens).toBeGreaterThan(10);
    const last = evalJson(file, '--train-on', 'last');
    expect(last).toEqual(prepared(file, 'sft-last.bin', '--train-on', 'last'));
    expect(last.tokens).toBeLessThan(all.tokens); // the multi-turn conversation's first answer is not counted
  });

  test('v1 CSV history,q,a: equals the prepared file (last answer)', () => {
    const file = path.join(work, 'sft.csv');
    fs.writeFileSync(file, 'history,q,a\n[],What is 1+1?,Two.\n"[[\'Hi\', \'Hello!\']]",Name a colour.,"Blue,\nlike the sky."\n');
    const r = evalJson(file);
    expect(r).toEqual(prepared(file, 'sft-csv.bin'));
    expect(r.tokens).toBeGreaterThan(4);
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('mm-eval-'))).toEqual([]);
  });

  test('a bad record names the file and line; --train-on on pretrain data is refused', () => {
    const file = path.join(work, 'bad-sft.jsonl');
    fs.writeFileSync(file, JSON.stringify({ conversations: conversations[0] }) + '\n{"conversations": "oops"}\n');
    const r = cli(['eval', 'loss', '--model', model, '--data', file]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${file}:2: field 'conversations' is not a list`);
    const text = path.join(work, 'pretrain.jsonl');
    fs.writeFileSync(text, JSON.stringify({ text: 'some text '.repeat(40) }) + '\n');
    const p = cli(['eval', 'loss', '--model', model, '--data', text, '--train-on', 'last']);
    expect(p.code).not.toBe(0);
    expect(p.err).toMatch(/--train-on applies to raw SFT data/);
  });
});

describe('RoPE scaling past max_seq_len', () => {
  // The fixture model has max_seq_len 64.
  const prompt = Array.from({ length: 60 }, (_, i) => 3 + ((i * 7) % 200));

  test('without scaling the context ends at max_seq_len with a clear error naming the limit and the flags', () => {
    const m = loadModelFolder(model);
    try {
      expect(generate(m, prompt, { maxNewTokens: 20, temperature: 0 })).toMatchObject({ finishReason: 'length' });
      expect(generate(m, prompt, { maxNewTokens: 20, temperature: 0 }).ids).toHaveLength(4);
      expect(() => generate(m, [...prompt, ...prompt], { maxNewTokens: 1 })).toThrow(
        /prompt has 120 tokens.*context is 64 tokens \(max_seq_len\).*--rope-scaling linear\|yarn --rope-factor F/);
    } finally {
      m.dispose();
    }
  });

  test.each(['linear', 'yarn'] as const)('%s: a model switched to factor 2 generates past max_seq_len, as the recomputing path', (type) => {
    const m = loadModelFolder(model);
    try {
      m.setRopeScaling({ type, factor: 2 });
      expect(contextLength(m.cfg)).toBe(128);
      const long = [...prompt, ...prompt];
      const cached = generate(m, long, { maxNewTokens: 6, temperature: 0 });
      expect(cached.ids).toHaveLength(6);
      expect(generate(m, long, { maxNewTokens: 6, temperature: 0, kvCache: false }).ids).toEqual(cached.ids);
      expect(generate(m, long, { maxNewTokens: 20, temperature: 0 }).ids).toHaveLength(8); // stops at 128
      m.setRopeScaling(null);
      expect(() => generate(m, long, { maxNewTokens: 1 })).toThrow(/context is 64 tokens/);
    } finally {
      m.dispose();
    }
  });

  test('the server takes prompts past max_seq_len once the model is scaled, and answers 400 naming the fix before', async () => {
    const m = loadModelFolder(model);
    const tok = Tokenizer.load(model);
    const long = 'The capital of France is Paris. '.repeat(12);
    expect(tok.encode(long).length).toBeGreaterThan(64);
    const post = async () => {
      const server = createServer({ model: m, tokenizer: tok, modelName: 'tiny' });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      try {
        const { port } = server.address() as { port: number };
        const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST',
          body: JSON.stringify({ prompt: long, max_tokens: 3, temperature: 0 }) });
        return { status: r.status, body: (await r.json()) as { error: { message: string }; usage: { completion_tokens: number } } };
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    };
    try {
      const refused = await post();
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/context is 64 tokens.*--rope-scaling/);
      m.setRopeScaling({ type: 'yarn', factor: 4 });
      const ok = await post();
      expect(ok.status).toBe(200);
      expect(ok.body.usage.completion_tokens).toBe(3);
    } finally {
      m.dispose();
    }
  });

  test('config.json rope_scaling (HF names accepted) is validated', () => {
    const base = { dim: 64, n_heads: 4, n_kv_heads: 2, max_seq_len: 100 };
    expect(contextLength(resolveConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 2.5 } } as never))).toBe(250);
    expect(resolveConfig(base).rope_scaling).toBeNull();
    expect(() => resolveConfig({ ...base, rope_scaling: { type: 'ntk', factor: 2 } } as never, 'x.json'))
      .toThrow(/x.json: rope_scaling.type must be "linear" or "yarn"/);
    expect(() => resolveConfig({ ...base, rope_scaling: { type: 'linear', factor: 0.5 } } as never)).toThrow(/factor must be a number ≥ 1/);
  });

  test('CLI: --rope-scaling/--rope-factor extend generate and eval loss; without them the error names the flags', () => {
    const ids = [...prompt, ...prompt].join(',');
    const plain = cli(['generate', '--model', model, '--prompt-ids', ids, '--max-new-tokens', '4', '--temperature', '0', '--json']);
    expect(plain.code).not.toBe(0);
    expect(plain.err).toMatch(/context is 64 tokens.*--rope-scaling linear\|yarn --rope-factor F/);
    for (const type of ['linear', 'yarn']) {
      const r = cli(['generate', '--model', model, '--prompt-ids', ids, '--max-new-tokens', '4', '--temperature', '0', '--json',
        '--rope-scaling', type, '--rope-factor', '2']);
      expect(r.code).toBe(0);
      const m = loadModelFolder(model);
      m.setRopeScaling({ type: type as 'linear' | 'yarn', factor: 2 });
      expect(JSON.parse(r.out).ids).toEqual(generate(m, [...prompt, ...prompt], { maxNewTokens: 4, temperature: 0, eosIds: [2] }).ids);
      m.dispose();
    }
    expect(cli(['generate', '--model', model, '--prompt-ids', '1,2', '--rope-factor', '2']).err).toMatch(/--rope-factor needs --rope-scaling/);
    const text = path.join(work, 'long.jsonl');
    fs.writeFileSync(text, JSON.stringify({ text: 'The capital of France is Paris. '.repeat(30) }) + '\n');
    const loss = cli(['eval', 'loss', '--model', model, '--data', text, '--json', '--rope-scaling', 'yarn', '--rope-factor', '2']);
    expect(loss.code).toBe(0);
    expect(JSON.parse(loss.out).tokens).toBeGreaterThan(0);
    const tooLong = cli(['eval', 'loss', '--model', model, '--data', text, '--seq-len', '100']);
    expect(tooLong.err).toMatch(/--seq-len 100 needs 99 positions; the model's context is 64 tokens/);
  });
});
