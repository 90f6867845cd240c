// Data parallelism through the real trainer (lib/train/trainer.ts) on a tiny MiniMind, in real processes:
//   - 2 ranks x accum 1 end at the weights of 1 rank x accum 2 (same global batch, same samples per step),
//     with rank-dependent initial weights made equal by the trainer's broadcast; both ranks hold the same bits;
//   - rank 0 alone writes metrics (one line per step) and checkpoints;
//   - the 2-rank step-4 checkpoint resumes on 1 rank (the cursor is remapped) and ends at the same weights.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnRanks } from './dist/spawn';

describe('DDP through the trainer (tiny MiniMind, cpu backend)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-ddp-trainer-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const weights = (tag: string, rank = 0) => {
    const b = fs.readFileSync(path.join(dir, `${tag}-rank${rank}.bin`));
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  };
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  test('2 ranks = 1 rank with the same global batch; rank 0 writes; a 2-rank checkpoint resumes on 1 rank', async () => {
    const run = (world: number, tag: string, o: object) => spawnRanks(world, 'minimind',
      { OUT_DIR: dir, TAG: tag, TRAIN_JSON: JSON.stringify({ out: path.join(dir, tag), batch: 4, steps: 8, ...o }) });
    const [two, one] = await Promise.all([run(2, 'two', { accum: 1 }), run(1, 'one', { accum: 2 })]);
    for (const e of [...two, ...one]) expect({ code: e.code, stderr: e.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Buffer.from(weights('two', 1).buffer).equals(Buffer.from(weights('two', 0).buffer))).toBe(true);
    expect(maxDiff(weights('two'), weights('one'))).toBeLessThan(1e-5);

    const metrics = fs.readFileSync(path.join(dir, 'two', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(8); // rank 0's lines only
    const oneMetrics = fs.readFileSync(path.join(dir, 'one', 'metrics.jsonl'), 'utf8').trim().split('\n');
    metrics.forEach((line, i) => // the logged loss is the mean over ranks: the 1-rank loss of the same samples
      expect(JSON.parse(line).loss).toBeCloseTo(JSON.parse(oneMetrics[i]).loss, 5));
    expect(fs.readdirSync(path.join(dir, 'two')).filter((f) => f.startsWith('step-')).sort()).toEqual(['step-4', 'step-8']);

    const [resumed] = await run(1, 'resumed', { accum: 2, resume: path.join(dir, 'two', 'step-4'), out: path.join(dir, 'resumed') });
    expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(maxDiff(weights('resumed'), weights('one'))).toBeLessThan(1e-5);
  });
});
