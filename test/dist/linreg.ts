// A tiny data-parallel training run for the DDP test: linear regression (weights [D] and a bias [1] as two
// parameter tensors) trained with the trainer's machinery (lib/train/trainer.ts): per optimizer step, `accum`
// micro-batches whose gradients accumulate, ONE dist.allReduceMean over all gradients, clipGradNorm, then the
// same AdamW step on every rank; rank 0 writes the checkpoint (optimizer state, cursor, world size). The data
// source follows lib/dist/sharding.ts, so a checkpoint from W ranks resumes on another number of ranks.
import * as fs from 'node:fs';
import { gradOf } from '../../lib/autograd/tape';
import { Dist } from '../../lib/dist';
import { remapCursor, ShardCursor, shardIndex, shardSize } from '../../lib/dist/sharding';
import { AdamW } from '../../lib/optim/adamw';
import { clipGradNorm } from '../../lib/optim/clip';
import { Tensor } from '../../lib/tensor/tensor';
import { Rng } from '../../lib/util/random';
import { D, regressionData, SAMPLES } from './data';

/** A sharded, resumable source of micro-batches (sample indices) over the regression samples. */
class ShardedSource {
  private cursor: ShardCursor = { epoch: 0, position: 0 };
  private order = { epoch: -1, perm: [] as number[] };

  constructor(private readonly B: number, private readonly rank: number, private readonly world: number) {}

  private sampleAt(c: ShardCursor): number {
    if (this.order.epoch !== c.epoch) {
      this.order = { epoch: c.epoch, perm: new Rng(100 + c.epoch).shuffle(Array.from({ length: SAMPLES }, (_, i) => i)) };
    }
    return this.order.perm[shardIndex(c, this.rank, this.world)];
  }

  next(): number[] {
    const rows: number[] = [];
    while (rows.length < this.B) {
      if (this.cursor.position >= shardSize(SAMPLES, this.world, this.cursor.start)) {
        this.cursor = { epoch: this.cursor.epoch + 1, position: 0 };
      }
      rows.push(this.sampleAt(this.cursor));
      this.cursor = { ...this.cursor, position: this.cursor.position + 1 };
    }
    return rows;
  }

  getCursor(): ShardCursor {
    return { ...this.cursor };
  }

  setCursor(c: ShardCursor, savedWorldSize: number): void {
    this.cursor = remapCursor(c, savedWorldSize, this.world);
  }
}

export interface Checkpoint {
  step: number;
  worldSize: number;
  cursor: ShardCursor;
  params: number[][];
  optimizer: { step: number; m: number[][]; v: number[][] };
}

export interface RunOptions {
  dist: Dist | null;
  batch: number;
  accum: number;
  steps: number;
  resumeFrom?: string;
  saveAt?: { step: number; file: string };
}

/** Trains and returns the final parameters (weights then bias). */
export function trainLinearRegression(o: RunOptions): number[] {
  const rank = o.dist?.rank ?? 0;
  const world = o.dist?.worldSize ?? 1;
  const { x, y } = regressionData();
  const source = new ShardedSource(o.batch, rank, world);
  // Rank-dependent initial values: the broadcast must make them rank 0's.
  const init = new Rng(1 + rank);
  const params = [D, 1].map((n) => Tensor.from(Float32Array.from({ length: n }, () => init.normal()), [n], 'f32', 'cpu', true));
  const optimizer = new AdamW(params, { lr: 0.05, weightDecay: 0.01, decoupled: true });
  let step = 0;
  if (o.resumeFrom) {
    const c = JSON.parse(fs.readFileSync(o.resumeFrom, 'utf8')) as Checkpoint;
    params.forEach((p, i) => p.upload(Float32Array.from(c.params[i])));
    optimizer.importState({ step: c.optimizer.step, m: c.optimizer.m.map((a) => Float32Array.from(a)),
      v: c.optimizer.v.map((a) => Float32Array.from(a)) });
    source.setCursor(c.cursor, c.worldSize);
    step = c.step;
  }
  o.dist?.broadcast(params);
  while (step < o.steps) {
    const w = params[0].toArray() as Float32Array;
    const b = (params[1].toArray() as Float32Array)[0];
    const gw = new Float32Array(D);
    const gb = new Float32Array(1);
    let lossSum = 0;
    for (let micro = 0; micro < o.accum; micro++) {
      // Mean squared error over the micro-batch, its gradient scaled by 1/accum (as backward(loss/accum) does).
      for (const i of source.next()) {
        const err = x[i].reduce((s, xv, k) => s + xv * w[k], b) - y[i];
        lossSum += (err * err) / o.batch;
        const g = (2 * err) / o.batch / o.accum;
        for (let k = 0; k < D; k++) gw[k] += g * x[i][k];
        gb[0] += g;
      }
    }
    gradOf(params[0]).upload(gw);
    gradOf(params[1]).upload(gb);
    o.dist?.allReduceMean(params.map((p) => gradOf(p)));
    const loss = o.dist ? o.dist.allReduceNumbers([lossSum / o.accum])[0] : lossSum / o.accum;
    clipGradNorm(params, 5);
    optimizer.step();
    optimizer.zeroGrad();
    step++;
    if (rank === 0 && o.saveAt && step === o.saveAt.step) {
      const state = optimizer.exportState();
      const c: Checkpoint = { step, worldSize: world, cursor: source.getCursor(),
        params: params.map((p) => Array.from(p.toArray())),
        optimizer: { step: state.step, m: state.m.map((a) => Array.from(a)), v: state.v.map((a) => Array.from(a)) } };
      fs.writeFileSync(o.saveAt.file, JSON.stringify(c));
    }
    if (rank === 0 && step % 5 === 0) console.log(`step ${step} loss ${loss.toFixed(5)}`);
  }
  const final = params.flatMap((p) => Array.from(p.toArray()));
  optimizer.dispose();
  params.forEach((p) => p.dispose());
  return final;
}
