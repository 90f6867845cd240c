// Loaders: x/y/mask layout and shift, pretrain windows, dpo row order, determinism, exact resume from a cursor,
// disjoint and complete sharding, and on-the-fly jsonl equal to prepared data.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openLoader, type Batch, type DataLoader, type LoaderOptions } from '../lib/data/loader';
import { prepareData } from '../lib/data/prepare';
import { SampleBuilder } from '../lib/data/samples';
import { writeDemoData, type DemoFiles } from '../lib/demo';
import { testTokenizerLoader, loadTokenizer, V1_TOKENIZER_DIR } from './data-tokenizers';

const v1 = loadTokenizer(V1_TOKENIZER_DIR);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'data-loader-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let demo: DemoFiles;
const prepared = { pretrain: path.join(tmp, 'pretrain.bin'), sft: path.join(tmp, 'sft.bin'),
  dpo: path.join(tmp, 'dpo.bin') };
const SEQ = 31; // rows of 32 ids

beforeAll(async () => {
  demo = writeDemoData(path.join(tmp, 'demo'), { seed: 5, pretrainBytes: 30_000 });
  // A few hundred records keep preparation quick with the pure-JS tokenizer.
  const head = (file: string, n: number) => {
    const out = `${file}.head.jsonl`;
    fs.writeFileSync(out, fs.readFileSync(file, 'utf8').split('\n').slice(0, n).join('\n'));
    return out;
  };
  demo = { ...demo, sft: head(demo.sft, 150), dpo: head(demo.dpo, 60) };
  for (const stage of ['pretrain', 'sft', 'dpo'] as const) {
    await prepareData({ stage, data: demo[stage], tokenizerDir: V1_TOKENIZER_DIR, out: prepared[stage],
      maxSeqLen: SEQ + 1, threads: 0, tokenizerLoader: testTokenizerLoader });
  }
});

const open = (o: Partial<LoaderOptions> & { data: string }) => openLoader({ batchSize: 4, seqLen: SEQ, ...o });
const take = (loader: DataLoader, n: number): Batch[] => Array.from({ length: n }, () => loader.next());
const u16 = (file: string) => {
  const b = fs.readFileSync(file);
  return Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16LE(2 * i));
};

describe('loaders', () => {
  test('pretrain: non-overlapping seqLen+1 windows of the token file, y = x shifted, every target counts', () => {
    const tokens = u16(prepared.pretrain);
    const loader = open({ data: prepared.pretrain, seed: 1 });
    expect(loader.totalSamples).toBe(Math.floor(tokens.length / (SEQ + 1)));
    const batch = loader.next();
    expect(batch.rows).toBe(4);
    expect(batch.x).toBeInstanceOf(Int32Array);
    expect(batch.mask).toBeInstanceOf(Float32Array);
    batch.samples.forEach((s, b) => {
      const window = tokens.slice(s * (SEQ + 1), (s + 1) * (SEQ + 1));
      expect(Array.from(batch.x.subarray(b * SEQ, (b + 1) * SEQ))).toEqual(window.slice(0, SEQ));
      expect(Array.from(batch.y.subarray(b * SEQ, (b + 1) * SEQ))).toEqual(window.slice(1));
    });
    expect(batch.mask.every((m) => m === 1)).toBe(true);
    loader.close();
  });

  test('sft: x = ids[:-1], y = ids[1:], mask = loss_mask[1:] of each prepared row', () => {
    const ids = u16(prepared.sft);
    const mask = Array.from(fs.readFileSync(`${prepared.sft}.mask`));
    const loader = open({ data: prepared.sft, seed: 2 });
    const batch = loader.next();
    batch.samples.forEach((s, b) => {
      const row = ids.slice(s * 32, s * 32 + 32);
      const rowMask = mask.slice(s * 32, s * 32 + 32);
      const at = b * SEQ;
      expect(Array.from(batch.x.subarray(at, at + SEQ))).toEqual(row.slice(0, -1));
      expect(Array.from(batch.y.subarray(at, at + SEQ))).toEqual(row.slice(1));
      expect(Array.from(batch.mask.subarray(at, at + SEQ))).toEqual(rowMask.slice(1));
    });
    expect(() => open({ data: prepared.sft, seqLen: 63 })).toThrow(/--max-seq-len 64/);
    expect(() => open({ data: prepared.sft, stage: 'dpo' })).toThrow(/prepared for sft, not dpo/);
    loader.close();
  });

  test('dpo: B chosen rows, then the B rejected rows of the same pairs', () => {
    const ids = u16(prepared.dpo);
    const loader = open({ data: prepared.dpo, batchSize: 3, seed: 3 });
    const batch = loader.next();
    expect(batch.rows).toBe(6);
    batch.samples.forEach((pair, b) => {
      for (const [k, row] of [[0, b], [1, 3 + b]]) {
        const stored = ids.slice((2 * pair + k) * 32, (2 * pair + k) * 32 + 32);
        expect(Array.from(batch.x.subarray(row * SEQ, (row + 1) * SEQ))).toEqual(stored.slice(0, -1));
      }
    });
    loader.close();
  });

  test('seeded order: same seed same batches, another seed another order, epochs reshuffled', () => {
    const a = take(open({ data: prepared.sft, seed: 9 }), 5).flatMap((b) => b.samples);
    const b = take(open({ data: prepared.sft, seed: 9 }), 5).flatMap((b) => b.samples);
    const c = take(open({ data: prepared.sft, seed: 10 }), 5).flatMap((b) => b.samples);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    const loader = open({ data: prepared.sft, seed: 9, batchSize: 5 });
    const n = loader.samplesPerEpoch;
    const epoch0 = Array.from({ length: n }, (_, i) => loader.sampleAt(0, i));
    const epoch1 = Array.from({ length: n }, (_, i) => loader.sampleAt(1, i));
    expect([...epoch0].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(epoch1).not.toEqual(epoch0);
    const unshuffled = open({ data: prepared.sft, shuffle: false, batchSize: 3 });
    expect(unshuffled.next().samples).toEqual([0, 1, 2]);
  });

  test('resume: a cursor saved mid-epoch restores the identical next batches, across the epoch end', () => {
    const loader = open({ data: prepared.pretrain, seed: 4, batchSize: 3 });
    const perEpoch = loader.batchesPerEpoch;
    take(loader, perEpoch - 2);
    const cursor = JSON.parse(JSON.stringify(loader.cursor));
    expect(cursor).toEqual({ epoch: 0, position: 3 * (perEpoch - 2) });
    const expected = take(loader, 5);
    expect(loader.cursor.epoch).toBe(1);
    const resumed = open({ data: prepared.pretrain, seed: 4, batchSize: 3 });
    resumed.seek(cursor);
    expect(take(resumed, 5)).toEqual(expected);
  });

  test('sharding: ranks are disjoint and together cover every sample once per epoch', () => {
    for (const worldSize of [2, 3]) {
      const seen: number[][] = [];
      for (let rank = 0; rank < worldSize; rank++) {
        const loader = open({ data: prepared.sft, seed: 6, rank, worldSize, batchSize: 4, partialLastBatch: true });
        const samples = take(loader, loader.batchesPerEpoch).flatMap((b) => b.samples);
        expect(samples.length).toBe(loader.samplesPerEpoch);
        expect(loader.cursor).toEqual({ epoch: 0, position: loader.samplesPerEpoch });
        seen.push(samples);
      }
      const all = seen.flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 150 }, (_, i) => i));
    }
    expect(() => open({ data: prepared.sft, rank: 2, worldSize: 2 })).toThrow(/rank 2/);
  });

  test('jsonl on the fly gives the same batches as the prepared file', () => {
    const onTheFly = open({ data: demo.sft, stage: 'sft', tokenizer: v1, seed: 8 });
    const fromFile = open({ data: prepared.sft, seed: 8 });
    expect(take(onTheFly, 3)).toEqual(take(fromFile, 3));
    const dpo = open({ data: demo.dpo, stage: 'dpo', tokenizer: v1, seed: 8, batchSize: 2 });
    expect(dpo.next()).toEqual(open({ data: prepared.dpo, seed: 8, batchSize: 2 }).next());
    // Pretraining on the fly: one padded document per row (v1 CSV-era PretrainDataset).
    const docs = fs.readFileSync(demo.pretrain, 'utf8').trim().split('\n').map((l) => JSON.parse(l).text as string);
    const pre = open({ data: demo.pretrain, stage: 'pretrain', tokenizer: v1, shuffle: false, batchSize: 1 }).next();
    const row = new SampleBuilder(v1, SEQ + 1).documentRow(docs[0]);
    expect(Array.from(pre.x)).toEqual(row.ids.slice(0, -1));
    expect(Array.from(pre.mask)).toEqual(row.mask.slice(1));
    expect(() => open({ data: demo.sft })).toThrow(/needs stage, tokenizer and seqLen/);
  });

  test('a bad jsonl line on the fly names file:line', () => {
    const file = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(file, '{"text": "fine"}\n\n{"text": 1}\n');
    const loader = open({ data: file, stage: 'pretrain', tokenizer: v1, shuffle: false, batchSize: 2 });
    expect(() => loader.next()).toThrow(`${file}:3: field 'text' is not a string (got number)`);
  });
});
