// Data-parallel training end to end, on a model small enough to check exactly: linear regression trained by
// the trainer's recipe (test/dist/linreg.ts: accumulate, one all-reduce per step, clip, AdamW on every rank).
//   - 2 ranks x accum 2 for 20 steps reach the weights of 1 rank x accum 4 (same global batch, same samples);
//   - the 2-rank run's checkpoint (global cursor, written by rank 0) resumes on 1 rank and ends at the same
//     weights as the uninterrupted 1-rank run: the cursor is remapped, nothing skipped or repeated.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnRanks } from './dist/spawn';

describe('DDP training (cpu backend)', () => {
  let outDir: string;
  beforeAll(() => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-ddp-'));
  });
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  const read = (tag: string, rank = 0) => JSON.parse(fs.readFileSync(path.join(outDir, `${tag}-rank${rank}.json`), 'utf8')) as number[];
  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

  test('2 ranks = 1 rank with the same global batch; a 2-rank checkpoint resumes on 1 rank', async () => {
    const ckpt = path.join(outDir, 'step10.json');
    const run = (world: number, tag: string, o: object) =>
      spawnRanks(world, 'train', { OUT_DIR: outDir, TAG: tag, TRAIN_JSON: JSON.stringify({ batch: 4, steps: 20, ...o }) });
    const [two, one] = await Promise.all([
      run(2, 'two', { accum: 2, saveAt: { step: 10, file: ckpt } }),
      run(1, 'one', { accum: 4 }),
    ]);
    for (const e of [...two, ...one]) expect({ code: e.code, stderr: e.stderr }).toEqual({ code: 0, stderr: '' });
    expect(read('two', 1)).toEqual(read('two', 0)); // every rank holds the same weights, bit for bit
    expect(maxDiff(read('two'), read('one'))).toBeLessThan(1e-5);
    // The run learned something: the loss fell (rank 0 prints it every 5 steps).
    const losses = [...two[0].stdout.matchAll(/loss ([\d.]+)/g)].map((m) => Number(m[1]));
    expect(losses).toHaveLength(4);
    expect(losses[3]).toBeLessThan(losses[0] / 2);

    // 10 steps x 16 samples = epoch 2 (64 samples an epoch), 32 in: 16 taken by each rank.
    const saved = JSON.parse(fs.readFileSync(ckpt, 'utf8')) as { worldSize: number; cursor: object };
    expect(saved).toMatchObject({ worldSize: 2, cursor: { epoch: 2, position: 16 } });
    const [resumed] = await run(1, 'resumed', { accum: 4, resumeFrom: ckpt });
    expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(maxDiff(read('resumed'), read('one'))).toBeLessThan(1e-5);
  });
});
