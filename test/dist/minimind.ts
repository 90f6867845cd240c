// The real trainer (lib/train/trainer.ts train()) on a tiny MiniMind as one rank of a data-parallel run, for
// test/dist-trainer.test.ts. The data: N random token rows, served by a source that shards them as
// lib/dist/sharding.ts says (rank r takes order positions start + r + j*W) and remaps its cursor on resume.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dist } from '../../lib/dist';
import { remapCursor, ShardCursor, shardIndex, shardSize } from '../../lib/dist/sharding';
import { loadModelFolder } from '../../lib/io/model-folder';
import { loadConfig } from '../../lib/nn/config';
import { initWeights } from '../../lib/nn/init';
import { MiniMind } from '../../lib/nn/model';
import { Tensor } from '../../lib/tensor/tensor';
import { Batch, BatchSource, train } from '../../lib/train/trainer';
import { Rng } from '../../lib/util/random';

export const CONFIG = { dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 128, max_seq_len: 32, hidden_dim: 128 };
const ROWS = 48;
const T = 16;

class ShardedTokens implements BatchSource {
  private cursor: ShardCursor = { epoch: 0, position: 0 };
  private readonly rows: Int32Array[];

  constructor(private readonly B: number, private readonly rank: number, private readonly world: number) {
    const rng = new Rng(5);
    // Ids from 1: id 0 is the ignored (pad) target, which would make micro-batches weigh differently.
    this.rows = Array.from({ length: ROWS }, () => Int32Array.from({ length: T + 1 }, () => 1 + rng.int(CONFIG.vocab_size - 1)));
  }

  get epoch(): number {
    return this.cursor.epoch;
  }

  get batchesPerEpoch(): number {
    return Math.floor(shardSize(ROWS, this.world) / this.B);
  }

  next(): Batch {
    const x = new Int32Array(this.B * T);
    const y = new Int32Array(this.B * T);
    for (let b = 0; b < this.B; b++) {
      if (this.cursor.position >= shardSize(ROWS, this.world, this.cursor.start)) this.cursor = { epoch: this.cursor.epoch + 1, position: 0 };
      const order = new Rng(100 + this.cursor.epoch).shuffle(Array.from({ length: ROWS }, (_, i) => i));
      const row = this.rows[order[shardIndex(this.cursor, this.rank, this.world)]];
      this.cursor = { ...this.cursor, position: this.cursor.position + 1 };
      x.set(row.subarray(0, T), b * T);
      y.set(row.subarray(1), b * T);
    }
    return { x, y, mask: new Float32Array(this.B * T).fill(1), B: this.B, T };
  }

  getCursor(): unknown {
    return { ...this.cursor };
  }

  setCursor(cursor: unknown, savedWorldSize = 1): void {
    this.cursor = remapCursor(cursor as ShardCursor, savedWorldSize, this.world);
  }
}

export interface MiniMindRun {
  out: string;
  batch: number;
  accum: number;
  steps: number;
  /** A checkpoint folder to resume from. */
  resume?: string;
}

/** Trains; returns every parameter's values, concatenated. */
export async function trainMiniMind(o: MiniMindRun, dist: Dist | null): Promise<Float32Array> {
  let model: MiniMind;
  if (o.resume) model = loadModelFolder(o.resume, 'cpu');
  else {
    const configFile = path.join(o.out + '.config.json');
    fs.writeFileSync(configFile, JSON.stringify(CONFIG));
    model = new MiniMind(loadConfig(configFile), 'cpu');
    initWeights(model, 1 + (dist?.rank ?? 0)); // rank-dependent: the trainer's broadcast must make them rank 0's
  }
  const params = model.parameters();
  const source = new ShardedTokens(o.batch, dist?.rank ?? 0, dist?.worldSize ?? 1);
  const tensor = (data: Int32Array | Float32Array, b: Batch) =>
    Tensor.from(data, [b.B, b.T], data instanceof Int32Array ? 'i32' : 'f32', 'cpu');
  await train(model, params, source, (b) => model.loss(tensor(b.x, b), tensor(b.y, b), tensor(b.mask, b)), {
    stage: 'pretrain', out: o.out, accum: o.accum, clip: 1, lr: 3e-3, minLr: 3e-4, warmup: 1, maxSteps: o.steps,
    epochs: 1, weightDecay: 0.01, optimizer: 'adamw', saveEvery: 4, keep: 0, logEvery: 1, tokenizerDir: null,
    resume: o.resume ?? null, quiet: true, args: { batch: o.batch }, dist,
  });
  const values = params.map((p) => p.toArray() as Float32Array);
  const all = new Float32Array(values.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of values) {
    all.set(v, at);
    at += v.length;
  }
  model.dispose();
  return all;
}
