// `minimind-native bench train`: forward + backward + optimizer step of a named model on random tokens.
// Reports tokens/s, seconds per step, MFU (6·N FLOPs per token, N = active parameters, over this machine's
// measured peak) and peak RSS.
import { backward } from '../lib/autograd/tape';
import { activeParameterCount, loadConfig, parameterCount } from '../lib/nn/config';
import { initWeights } from '../lib/nn/init';
import { MiniMind } from '../lib/nn/model';
import { AdamW } from '../lib/optim/adamw';
import { clipGradNorm } from '../lib/optim/clip';
import { resetStepArenas } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';
import { Rng } from '../lib/util/random';
import { measureMachine } from './harness';

export interface TrainBenchOptions {
  modelConfig: string;
  batchSize: number;
  seqLen: number;
  steps: number;
}

export interface TrainBenchResult {
  model: string;
  params: number;
  batch_size: number;
  seq_len: number;
  threads: number;
  tokens_per_s: number;
  step_s: number;
  mfu: number;
  peak_gflops: number;
  peak_rss_mb: number;
}

export function benchTrain(o: TrainBenchOptions): TrainBenchResult {
  const machine = measureMachine();
  const cfg = loadConfig(o.modelConfig);
  if (o.seqLen > cfg.max_seq_len) throw new Error(`--seq-len ${o.seqLen} exceeds the model's max_seq_len ${cfg.max_seq_len}`);
  const model = new MiniMind(cfg);
  initWeights(model, 1337);
  const params = model.parameters();
  const opt = new AdamW(params, { lr: 1e-4 });
  const rng = new Rng(7);
  const n = o.batchSize * o.seqLen;
  const x = Int32Array.from({ length: n }, () => 1 + rng.int(cfg.vocab_size - 1));
  const y = Int32Array.from({ length: n }, () => 1 + rng.int(cfg.vocab_size - 1));
  const mask = new Float32Array(n).fill(1);
  const times: number[] = [];
  for (let s = 0; s < o.steps + 1; s++) {
    const t0 = process.hrtime.bigint();
    const loss = model.loss(Tensor.from(x, [o.batchSize, o.seqLen], 'i32'), Tensor.from(y, [o.batchSize, o.seqLen], 'i32'),
      Tensor.from(mask, [o.batchSize, o.seqLen]));
    backward(loss);
    clipGradNorm(params, 1);
    opt.step(1e-4);
    opt.zeroGrad();
    resetStepArenas();
    if (s > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9); // the first step warms up
  }
  opt.dispose();
  model.dispose();
  times.sort((a, b) => a - b);
  const stepS = times[Math.floor(times.length / 2)];
  const tps = n / stepS;
  const N = parameterCount(cfg);
  const active = activeParameterCount(cfg);
  return {
    model: o.modelConfig,
    params: N,
    batch_size: o.batchSize,
    seq_len: o.seqLen,
    threads: machine.threads,
    tokens_per_s: tps,
    step_s: stepS,
    mfu: (6 * active * tps) / (machine.peak_gflops * 1e9),
    peak_gflops: machine.peak_gflops,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}
