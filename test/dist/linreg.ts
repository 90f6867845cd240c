// A tiny data-parallel training run for the DDP test: linear regression (weights [D] and a bias [1] as two
// parameter tensors) trained with AdamW on the same schedule as lib/train/trainer.ts: per optimizer step,
// `accum` micro-batches whose gradients accumulate, ONE dist.allReduceMean over all gradients, then the same
// optimizer step on every rank; rank 0 writes the checkpoint (global data cursor included). The data source
// follows lib/dist/sharding.ts, so a checkpoint from W ranks resumes on another number of ranks.
import * as fs from 'node:fs';
import { Dist } from '../../lib/dist';
import { advanceCursor, GlobalCursor, globalMicroBatch } from '../../lib/dist/sharding';
import { Tensor } from '../../lib/tensor/tensor';
import { Rng } from '../../lib/util/random';
import { D, regressionData, SAMPLES } from './data';

/** A sharded, resumable micro-batch source over the regression samples. */
class ShardedSource {
  private cursor: GlobalCursor = { epoch: 0, samples: 0 };
  private order: number[] = [];
  private taken = 0; // micro-batches this rank read since `cursor`'s epoch position was set

  constructor(private readonly B: number, private readonly rank: number, private readonly world: number) {
    this.shuffle();
  }

  /** Micro-batches per epoch on this rank. */
  get batchesPerEpoch(): number {
    return Math.floor(SAMPLES / this.B / this.world);
  }

  private shuffle(): void {
    this.order = new Rng(100 + this.cursor.epoch).shuffle(Array.from({ length: SAMPLES }, (_, i) => i));
  }

  next(): number[] {
    if (this.cursor.samples / this.B + this.taken * this.world >= this.batchesPerEpoch * this.world) {
      this.cursor = { epoch: this.cursor.epoch + 1, samples: 0 };
      this.taken = 0;
      this.shuffle();
    }
    const g = globalMicroBatch(this.cursor, this.B, this.rank, this.world, this.taken++);
    return this.order.slice(g * this.B, (g + 1) * this.B);
  }

  getCursor(): GlobalCursor {
    return advanceCursor(this.cursor, this.B, this.world, this.taken);
  }

  setCursor(c: GlobalCursor): void {
    this.cursor = { ...c };
    this.taken = 0;
    this.shuffle();
  }
}

export interface Checkpoint {
  step: number;
  worldSize: number;
  cursor: GlobalCursor;
  params: number[][];
  m: number[][];
  v: number[][];
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
  const host = [Float32Array.from({ length: D }, () => init.normal()), Float32Array.from([init.normal()])];
  const params = host.map((h) => Tensor.from(h, [h.length], 'f32', 'cpu', true));
  const grads = host.map((h) => Tensor.persistent([h.length], 'f32', 'cpu'));
  let m = host.map((h) => new Float32Array(h.length));
  let v = host.map((h) => new Float32Array(h.length));
  let step = 0;
  if (o.resumeFrom) {
    const c = JSON.parse(fs.readFileSync(o.resumeFrom, 'utf8')) as Checkpoint;
    params.forEach((p, i) => p.upload(Float32Array.from(c.params[i])));
    m = c.m.map((a) => Float32Array.from(a));
    v = c.v.map((a) => Float32Array.from(a));
    source.setCursor(c.cursor);
    step = c.step;
  }
  o.dist?.broadcast(params);
  const [lr, beta1, beta2, eps, decay] = [0.05, 0.9, 0.999, 1e-8, 0.01];
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
    grads[0].upload(gw);
    grads[1].upload(gb);
    o.dist?.allReduceMean(grads);
    const loss = o.dist ? o.dist.allReduceNumbers([lossSum / o.accum])[0] : lossSum / o.accum;
    step++;
    // AdamW, decoupled weight decay, bias-corrected moments (f32 state, as lib/optim keeps it).
    params.forEach((p, i) => {
      const value = p.toArray() as Float32Array;
      const grad = grads[i].toArray() as Float32Array;
      for (let k = 0; k < value.length; k++) {
        m[i][k] = beta1 * m[i][k] + (1 - beta1) * grad[k];
        v[i][k] = beta2 * v[i][k] + (1 - beta2) * grad[k] * grad[k];
        const mHat = m[i][k] / (1 - beta1 ** step);
        const vHat = v[i][k] / (1 - beta2 ** step);
        value[k] -= lr * (mHat / (Math.sqrt(vHat) + eps) + decay * value[k]);
      }
      p.upload(value);
    });
    if (rank === 0 && o.saveAt && step === o.saveAt.step) {
      const c: Checkpoint = { step, worldSize: world, cursor: source.getCursor(),
        params: params.map((p) => Array.from(p.toArray())), m: m.map((a) => Array.from(a)), v: v.map((a) => Array.from(a)) };
      fs.writeFileSync(o.saveAt.file, JSON.stringify(c));
    }
    if (rank === 0 && step % 5 === 0) console.log(`step ${step} loss ${loss.toFixed(5)}`);
  }
  return params.flatMap((p) => Array.from(p.toArray()));
}
