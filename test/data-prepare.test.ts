// Data preparation: record parsing for every format, MiniMind's loss masks on hand-checked examples, the
// prepared files (layout, header, thread-count independence), skipped-line reports, --strict, atomic output and
// the `data prepare` command. The tokenizer is the test adapter over @huggingface/tokenizers (v1 files).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { dataCommand } from '../lib/cli/data';
import { readHeader } from '../lib/data/format';
import { prepareData, type PrepareOptions } from '../lib/data/prepare';
import { parsePythonLiteral, parseRecord, splitCsv } from '../lib/data/records';
import { RecordStream } from '../lib/data/source';
import { assistantTurnsMask, SampleBuilder, v1LastAnswerMask, type SkippedRecord } from '../lib/data/samples';
import { FORMAT_SAMPLES_DIR, testTokenizerLoader, loadTokenizer, MINIMIND2_TOKENIZER_DIR,
  V1_TOKENIZER_DIR } from './data-tokenizers';

const v1 = loadTokenizer(V1_TOKENIZER_DIR);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-prepare-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sample = (name: string) => path.join(FORMAT_SAMPLES_DIR, name);
const write = (name: string, text: string) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
};
// Inline tokenisation by default (starting workers costs ~0.5 s); the tests that pass `threads` use workers.
const prepare = (options: Omit<PrepareOptions, 'tokenizerDir'> & { tokenizerDir?: string }) =>
  prepareData({ tokenizerDir: V1_TOKENIZER_DIR, tokenizerLoader: testTokenizerLoader, threads: 0, ...options });
const u16 = (file: string) => {
  const b = fs.readFileSync(file);
  return Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16LE(2 * i));
};
const u64 = (file: string) => {
  const b = fs.readFileSync(file);
  return Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigUInt64LE(8 * i)));
};

// The v1 chat example of minimind-reference.md §2.2 (ids verified upstream).
const HELLO = [{ role: 'user', content: '你好' }, { role: 'assistant', content: '你好！' }];
const HELLO_IDS = [1, 320, 275, 201, 5134, 2, 201, 1, 1078, 538, 501, 201, 5134, 2207, 2, 201];
const ASSISTANT = [1, 1078, 538, 501]; // `<s>assistant`

describe('record parsing', () => {
  test('fixture jsonl samples of each stage', () => {
    const lines = (f: string) => fs.readFileSync(sample(f), 'utf8').trim().split('\n');
    expect(parseRecord('pretrain', 'jsonl', lines('tiny_pretrain.jsonl')[0], undefined, 512))
      .toEqual({ kind: 'document', text: 'MiniMind 是一个用于学习大语言模型训练流程的小型项目。' });
    const sft = parseRecord('sft', 'jsonl', lines('tiny_sft.jsonl')[2], undefined, 512);
    expect(sft).toMatchObject({ kind: 'chat', mask: 'assistant-turns' });
    expect(sft.kind === 'chat' && sft.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    const dpo = parseRecord('dpo', 'jsonl', lines('tiny_dpo.jsonl')[0], undefined, 512);
    expect(dpo.kind === 'pair' && [dpo.chosen[1].content, dpo.rejected[1].content])
      .toEqual(['MiniMind 是一个用于学习大语言模型训练流程的小型开源项目。', '不知道。']);
  });

  test('v1 dpo triple becomes a user turn and two assistant answers', () => {
    expect(parseRecord('dpo', 'jsonl', '{"prompt":"Q","chosen":"good","rejected":"bad"}', undefined, 512)).toEqual({
      kind: 'pair', chosen: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'good' }],
      rejected: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'bad' }] });
  });

  test('v1 CSV: quoted fields, Python history literal, history cut to maxSeqLen/2 characters', () => {
    expect(splitCsv('a,"b,""c""",d')).toEqual(['a', 'b,"c"', 'd']);
    expect(parsePythonLiteral(`[['问', "答\\n"], ('x', 'y\\'s'), []]`)).toEqual([['问', '答\n'], ['x', "y's"], []]);
    expect(parsePythonLiteral('not python')).toBeUndefined();
    const row = `"[['一二三四五六', '甲乙丙丁戊己'], ['only one']]",今天天气怎么样,很好`;
    const r = parseRecord('sft', 'csv', row, ['history', 'q', 'a'], 8);
    expect(r).toEqual({ kind: 'chat', mask: 'v1-last-answer', messages: [
      { role: 'user', content: '一二三四' }, { role: 'assistant', content: '甲乙丙丁' },
      { role: 'user', content: '今天天气怎么样' }, { role: 'assistant', content: '很好' }] });
    // An unreadable history is an empty one, as v1's eval() fallback.
    expect(parseRecord('sft', 'csv', 'oops,q,a', ['history', 'q', 'a'], 512))
      .toMatchObject({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] });
  });

  test('streaming: records cut across chunks (even inside a UTF-8 character) come out whole with their line', async () => {
    const csv = write('chunks.csv', 'history,q,a\r\n[],"多行\r\n问题",答\r\n"[[\'a\', \'b\']]",q2,"答""案"\r\n');
    const array = write('chunks.json', '[\n  {"prompt": "问{", "chosen": "}", "rejected": "\\"}"},\n  {"prompt": "b"}\n]\n');
    const jsonl = write('chunks.jsonl', '{"text": "一"}\n\n{"text": "二"}');
    const read = async (file: string, format: 'csv' | 'json-array' | 'jsonl', chunkBytes: number) => {
      const stream = new RecordStream(file, format, undefined, chunkBytes);
      const records = [];
      for await (const group of stream.groups()) records.push(...group);
      return { columns: stream.columns, records };
    };
    expect(await read(csv, 'csv', 1 << 20)).toEqual({ columns: ['history', 'q', 'a'], records: [
      { line: 2, text: '[],"多行\r\n问题",答' }, { line: 4, text: `"[['a', 'b']]",q2,"答""案"` }] });
    expect((await read(array, 'json-array', 1 << 20)).records).toEqual([
      { line: 2, text: '{"prompt": "问{", "chosen": "}", "rejected": "\\"}"}' }, { line: 3, text: '{"prompt": "b"}' }]);
    expect((await read(jsonl, 'jsonl', 1 << 20)).records).toEqual([{ line: 1, text: '{"text": "一"}' },
      { line: 3, text: '{"text": "二"}' }]);
    for (const chunkBytes of [1, 2, 5, 7]) {
      expect(await read(csv, 'csv', chunkBytes)).toEqual(await read(csv, 'csv', 1 << 20));
      expect(await read(array, 'json-array', chunkBytes)).toEqual(await read(array, 'json-array', 1 << 20));
      expect(await read(jsonl, 'jsonl', chunkBytes)).toEqual(await read(jsonl, 'jsonl', 1 << 20));
    }
  });

  test('bad records name the problem', () => {
    const reason = (stage: 'pretrain' | 'sft' | 'dpo', text: string) => {
      try {
        parseRecord(stage, 'jsonl', text, undefined, 512);
      } catch (e) {
        return (e as Error).message;
      }
      return 'ok';
    };
    expect(reason('pretrain', '{"text": ')).toMatch(/^bad JSON/);
    expect(reason('pretrain', '{"txt": "a"}')).toBe("missing field 'text'");
    expect(reason('pretrain', '{"text": 5}')).toBe("field 'text' is not a string (got number)");
    expect(reason('pretrain', '[1]')).toBe('expected a JSON object, got array');
    expect(reason('sft', '{"conversations": [{"role": "user", "content": 1}]}'))
      .toBe('conversations[0].content is not a string (got number)');
    expect(reason('sft', '{"conversations": [{"role": "user", "content": "q"}]}'))
      .toBe("field 'conversations' has no assistant turn");
    expect(reason('dpo', '{"chosen": []}')).toBe("field 'chosen' is empty");
  });
});

describe('loss masks', () => {
  test('v1 last-answer mask on the reference example (§3.3 worked example)', () => {
    const row = new SampleBuilder(v1, 20).chatRow(HELLO, 'v1-last-answer');
    expect(row.ids).toEqual([...HELLO_IDS, 0, 0, 0, 0]);
    // q = index of the last `<s>assistant` (7) + 4 = 11; trained: '\n', '你好', '！', '</s>', '\n'.
    expect(row.mask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
  });

  test('v1: only the last answer of a multi-turn conversation; absent prefix gives q = 3; truncation', () => {
    const builder = new SampleBuilder(v1, 64);
    const row = builder.chatRow([...HELLO, ...HELLO], 'v1-last-answer');
    expect(row.ids.slice(0, 32)).toEqual([...HELLO_IDS, ...HELLO_IDS]);
    expect(row.mask.slice(0, 32)).toEqual([...new Array(27).fill(0), 1, 1, 1, 1, 1]);
    expect(row.mask.slice(32).every((m) => m === 0)).toBe(true);
    expect(v1LastAnswerMask([5, 6, 7, 8, 9], 8, ASSISTANT)).toEqual([0, 0, 0, 1, 1, 0, 0, 0]);
    const cut = new SampleBuilder(v1, 13).chatRow(HELLO, 'v1-last-answer');
    expect(cut).toEqual({ ids: HELLO_IDS.slice(0, 13), mask: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
      truncated: true });
  });

  test('MiniMind2 mask: every assistant turn, from after the `\\n` to the `\\n` after eos', () => {
    const ids = [1, 9, 9, 2, 5, ...ASSISTANT, 201, 7, 8, 2, 201, ...ASSISTANT, 201, 6, 2, 201, 0, 0];
    const ones = [10, 11, 12, 13, 19, 20, 21];
    expect(assistantTurnsMask(ids, ASSISTANT, [2])).toEqual(ids.map((_, i) => (ones.includes(i) ? 1 : 0)));
    // No eos (truncated): the mask runs to the end of the row.
    expect(assistantTurnsMask([...ASSISTANT, 201, 7, 8, 9], ASSISTANT, [2])).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    const row = new SampleBuilder(v1, 20).chatRow(HELLO, 'assistant-turns');
    expect(row.mask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
  });

  test('MiniMind2 ChatML tokenizer: the targets are exactly each answer + <|im_end|> + newline', () => {
    const tok = loadTokenizer(MINIMIND2_TOKENIZER_DIR);
    const messages = [{ role: 'system', content: '你是助手。' }, { role: 'user', content: '1+1?' },
      { role: 'assistant', content: '2' }, { role: 'user', content: 'Color of sky?' },
      { role: 'assistant', content: 'Blue.' }];
    const row = new SampleBuilder(tok, 128).chatRow(messages, 'assistant-turns');
    const spans: number[][] = [];
    row.mask.forEach((m, i) => {
      if (m && !row.mask[i - 1]) spans.push([]);
      if (m) spans[spans.length - 1].push(row.ids[i]);
    });
    expect(spans.map((s) => tok.decode(s))).toEqual(['2<|im_end|>\n', 'Blue.<|im_end|>\n']);
  });
});

describe('data prepare', () => {
  test('pretrain jsonl: <s>doc</s> concatenation, document index, header', async () => {
    const out = path.join(tmp, 'pre.bin');
    const { header, files } = await prepare({ stage: 'pretrain', data: sample('tiny_pretrain.jsonl'), out });
    const texts = fs.readFileSync(sample('tiny_pretrain.jsonl'), 'utf8').trim().split('\n')
      .map((l) => (JSON.parse(l) as { text: string }).text);
    const docs = texts.map((t) => [1, ...v1.encode(t), 2]);
    expect(u16(out)).toEqual(docs.flat());
    // Same ids as encoding `<s>{text}</s>` in one go, as v1 did.
    expect(docs[0]).toEqual(v1.encode(`<s>${texts[0]}</s>`));
    let at = 0;
    expect(u64(`${out}.idx`)).toEqual([0, ...docs.map((d) => (at += d.length))]);
    expect(files).toEqual([out, `${out}.idx`, `${out}.json`]);
    expect(header).toMatchObject({ stage: 'pretrain', seqLen: null, mask: 'none', dtype: 'uint16',
      tokenizer: { vocabSize: 6400, bosId: 1, eosId: 2, padId: -1 },
      counts: { records: 4, samples: 4, rows: 0, tokens: at, skipped: 0 } });
    expect(readHeader(out).header).toEqual(header);
  });

  test('pretrain from v1 CSV (multi-line quoted cells, CRLF) and plain text give the same documents', async () => {
    const texts = ['第一行\n第二行', 'say "hi", ok', 'plain'];
    const csv = write('pre.csv', 'text\r\n' + texts.map((t) => (/[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t))
      .join('\r\n') + '\r\n');
    const txt = write('pre.txt', '\uFEFFline one\r\n\r\nline two\n');
    await prepare({ stage: 'pretrain', data: csv, out: path.join(tmp, 'csv.bin') });
    expect(u16(path.join(tmp, 'csv.bin'))).toEqual(texts.flatMap((t) => [1, ...v1.encode(t), 2]));
    const { header } = await prepare({ stage: 'pretrain', data: txt, out: path.join(tmp, 'txt.bin') });
    expect(header.counts.samples).toBe(2);
    expect(u16(path.join(tmp, 'txt.bin'))).toEqual(['line one', 'line two'].flatMap((t) => [1, ...v1.encode(t), 2]));
  });

  test('sft from jsonl and v1 CSV: padded rows and masks equal to the sample builder', async () => {
    const builder = new SampleBuilder(v1, 48);
    const out = path.join(tmp, 'sft.bin');
    const { header } = await prepare({ stage: 'sft', data: sample('tiny_sft.jsonl'), out, maxSeqLen: 48 });
    const rows = fs.readFileSync(sample('tiny_sft.jsonl'), 'utf8').trim().split('\n').map((l) =>
      builder.chatRow((JSON.parse(l) as { conversations: { role: string; content: string }[] }).conversations,
        'assistant-turns'));
    expect(u16(out)).toEqual(rows.flatMap((r) => r.ids));
    expect(Array.from(fs.readFileSync(`${out}.mask`))).toEqual(rows.flatMap((r) => r.mask));
    expect(header).toMatchObject({ seqLen: 48, mask: 'assistant-turns', counts: { samples: 3, rows: 3, truncated: 3 } });

    const csv = write('sft.csv', 'history,q,a\r\n[],你好,你好！\r\n"[[\'你好\', \'你好！\']]",你好,你好！\r\n');
    const csvOut = path.join(tmp, 'sftcsv.bin');
    const csvHeader = (await prepare({ stage: 'sft', data: csv, out: csvOut, maxSeqLen: 40, threads: 2 })).header;
    expect(csvHeader).toMatchObject({ mask: 'v1-last-answer', counts: { samples: 2, truncated: 0 } });
    const ids = u16(csvOut);
    const mask = Array.from(fs.readFileSync(`${csvOut}.mask`));
    expect(ids.slice(0, 40)).toEqual([...HELLO_IDS, ...new Array(24).fill(0)]);
    expect(mask.slice(0, 40)).toEqual([...new Array(11).fill(0), 1, 1, 1, 1, 1, ...new Array(24).fill(0)]);
    expect(ids.slice(40, 80)).toEqual([...HELLO_IDS, ...HELLO_IDS, ...new Array(8).fill(0)]);
    expect(mask.slice(40, 80)).toEqual([...new Array(27).fill(0), 1, 1, 1, 1, 1, ...new Array(8).fill(0)]);
  });

  test('dpo from jsonl and a v1 JSON array: chosen and rejected rows interleaved', async () => {
    const builder = new SampleBuilder(v1, 64);
    const out = path.join(tmp, 'dpo.bin');
    const { header } = await prepare({ stage: 'dpo', data: sample('tiny_dpo.jsonl'), out, maxSeqLen: 64 });
    expect(header).toMatchObject({ counts: { samples: 2, rows: 4 }, mask: 'assistant-turns' });
    const pair = JSON.parse(fs.readFileSync(sample('tiny_dpo.jsonl'), 'utf8').split('\n')[1]);
    expect(u16(out).slice(128, 192)).toEqual(builder.chatRow(pair.chosen, 'assistant-turns').ids);
    expect(u16(out).slice(192, 256)).toEqual(builder.chatRow(pair.rejected, 'assistant-turns').ids);

    const array = write('dpo.json', JSON.stringify([{ prompt: 'Q1', chosen: 'good {1}', rejected: 'bad "1"' },
      { prompt: '问', chosen: '好', rejected: '坏' }], null, 4));
    const arrayOut = path.join(tmp, 'dpoarray.bin');
    const arrayHeader = (await prepare({ stage: 'dpo', data: array, out: arrayOut, maxSeqLen: 32 })).header;
    expect(arrayHeader).toMatchObject({ source: { format: 'json-array' }, counts: { samples: 2, rows: 4 } });
    const chat = (q: string, a: string) => [{ role: 'user', content: q }, { role: 'assistant', content: a }];
    expect(u16(arrayOut).slice(32, 64)).toEqual(new SampleBuilder(v1, 32).chatRow(chat('Q1', 'bad "1"'),
      'assistant-turns').ids);
  });

  test('bad lines are skipped and reported as file:line: reason; --strict stops with nothing written', async () => {
    const bad = write('bad.jsonl', ['{"text": "ok one"}', '{"text": ', '', '{"txt": "x"}', '{"text": 3}',
      '{"text": "ok two"}'].join('\n'));
    const skipped: string[] = [];
    const onSkip = (file: string, s: SkippedRecord) => skipped.push(`${file}:${s.line}: ${s.reason}`);
    const out = path.join(tmp, 'bad.bin');
    const { header } = await prepare({ stage: 'pretrain', data: bad, out, onSkip });
    expect(skipped).toEqual([expect.stringMatching(new RegExp(`^${bad}:2: bad JSON`)),
      `${bad}:4: missing field 'text'`, `${bad}:5: field 'text' is not a string (got number)`]);
    expect(header.counts).toMatchObject({ records: 5, samples: 2, skipped: 3 });

    const strictOut = path.join(tmp, 'strict', 'bad.bin');
    await expect(prepare({ stage: 'pretrain', data: bad, out: strictOut, strict: true }))
      .rejects.toThrow(new RegExp(`^${bad}:2: bad JSON`));
    expect(fs.readdirSync(path.dirname(strictOut))).toEqual([]);
  });

  test('a failure mid-way leaves no output and keeps the previous one intact', async () => {
    const data = write('many.jsonl', Array.from({ length: 400 }, (_, i) => JSON.stringify({ text: `doc ${i}` }))
      .join('\n'));
    const dir = path.join(tmp, 'atomic');
    const out = path.join(dir, 'many.bin');
    await prepare({ stage: 'pretrain', data, out, batchBytes: 64 });
    const before = fs.readdirSync(dir).sort().map((f) => fs.readFileSync(path.join(dir, f)).toString('hex'));
    let batches = 0;
    await expect(prepare({ stage: 'pretrain', data: sample('tiny_pretrain.jsonl'), out, batchBytes: 16,
      onProgress: () => {
        if (++batches === 2) throw new Error('disk full (simulated)');
      } })).rejects.toThrow('disk full (simulated)');
    expect(fs.readdirSync(dir).sort().map((f) => fs.readFileSync(path.join(dir, f)).toString('hex'))).toEqual(before);
    // A worker that fails is an error too, with no files left.
    await expect(prepare({ stage: 'pretrain', data, out, threads: 2, tokenizerLoader: { module: testTokenizerLoader.module,
      exportPath: 'loadTokenizerOnlyOnMainThread' } })).rejects.toThrow(/simulated worker failure/);
    expect(fs.readdirSync(dir).sort().map((f) => fs.readFileSync(path.join(dir, f)).toString('hex'))).toEqual(before);
  });

  test('the output does not depend on the number of threads or the batch size', async () => {
    const data = write('order.jsonl', Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ conversations: [{ role: 'user', content: `问题 ${i}` }, { role: 'assistant', content: `答案 ${i * 7}` }] }))
      .join('\n'));
    const bytes = async (threads: number, batchBytes: number) => {
      const out = path.join(tmp, `order-${threads}-${batchBytes}.bin`);
      await prepare({ stage: 'sft', data, out, maxSeqLen: 32, threads, batchBytes });
      return [fs.readFileSync(out).toString('hex'), fs.readFileSync(`${out}.mask`).toString('hex')];
    };
    const inline = await bytes(0, 1 << 20);
    expect(await bytes(2, 200)).toEqual(inline);
    expect(await bytes(3, 1000)).toEqual(inline);
  });

  test('the data prepare command', async () => {
    const out = path.join(tmp, 'cli', 'sft.bin');
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await yargs(['data', 'prepare', '--stage', 'sft', '--data', sample('tiny_sft.jsonl'), '--tokenizer',
        V1_TOKENIZER_DIR, '--out', out, '--max-seq-len', '64', '--threads', '1',
        '--tokenizer-loader', `${testTokenizerLoader.module}#${testTokenizerLoader.exportPath}`])
        .option('threads', { type: 'number' }).command(dataCommand).strict().parseAsync();
      expect(log.mock.calls.flat().join('\n')).toMatch(/3 samples, 192 tokens, 0 skipped.*MB\/s with 1 threads/);
      expect(readHeader(out).header.counts.rows).toBe(3);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});

test('--train-on overrides the format\'s mask: last trains only the final answer, all every assistant turn', async () => {
  const conv = [{ role: 'user', content: '你好' }, { role: 'assistant', content: '你好！' },
    { role: 'user', content: '再见' }, { role: 'assistant', content: '再见！' }];
  const data = write('two-turns.jsonl', JSON.stringify({ conversations: conv }) + '\n');
  const masks: Record<string, number[]> = {};
  for (const trainOn of ['all', 'last'] as const) {
    const out = path.join(tmp, `two-turns-${trainOn}.bin`);
    await prepare({ stage: 'sft', data, out, maxSeqLen: 64, trainOn });
    masks[trainOn] = Array.from(fs.readFileSync(`${out}.mask`));
  }
  const builder = new SampleBuilder(v1, 64);
  expect(masks.all).toEqual(builder.chatRow(conv, 'assistant-turns').mask);
  expect(masks.last).toEqual(builder.chatRow(conv, 'v1-last-answer').mask);
  const ones = (m: number[]) => m.filter((v) => v === 1).length;
  expect(ones(masks.last)).toBeGreaterThan(0);
  expect(ones(masks.last)).toBeLessThan(ones(masks.all));
});
