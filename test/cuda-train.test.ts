// Training on device 'cuda' through the same engine as the CPU, run on the emulated device (the CUDA kernels
// compiled for the CPU): the same tiny MiniMind from the same initialisation is trained on 'cpu' (f32) and on
// 'cuda' (bf16 weights and activations, f32 master weights, gradients of parameters, moments and reductions), and
// the losses must track. Then `runTraining({ device: 'cuda' })` end to end: checkpoint, model folder, reload on
// the CPU.
//
// Tolerance: bf16 keeps 8 significant bits, so every activation carries a relative rounding of up to 2^-9 and the
// cuda model computes a slightly different function; through 2 layers and a few AdamW steps that stays well
// under 2% of the loss (measured: under 0.5%). The cuda loss must also fall, as the CPU's does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as TensorModule from '../lib/tensor/tensor';
import type * as ModelModule from '../lib/nn/model';
import type * as InitModule from '../lib/nn/init';
import type * as TapeModule from '../lib/autograd/tape';
import type * as MemoryModule from '../lib/tensor/memory';
import type * as ConfigModule from '../lib/nn/config';
import type * as RunModule from '../lib/train/run';
import type * as ModelFolderModule from '../lib/io/model-folder';
import type * as FixtureModule from './train-fixture';
import type * as DtypeModule from '../lib/tensor/dtype';
import type * as MixedModule from '../lib/cuda/mixed';
import type * as TrainStepsModule from './train-steps';

// Device 'cuda' must be the emulator: set before lib/native.ts is loaded (imports above are types only).
process.env.MINIMIND_CUDA_EMULATE = '1';
/* eslint-disable @typescript-eslint/no-require-imports */
const { Tensor } = require('../lib/tensor/tensor') as typeof TensorModule;
const { MiniMind } = require('../lib/nn/model') as typeof ModelModule;
const { initWeights } = require('../lib/nn/init') as typeof InitModule;
const { backward, noGrad } = require('../lib/autograd/tape') as typeof TapeModule;
const { resetStepArenas } = require('../lib/tensor/memory') as typeof MemoryModule;
const { resolveConfig } = require('../lib/nn/config') as typeof ConfigModule;
const { runTraining } = require('../lib/train/run') as typeof RunModule;
const { loadModelFolder } = require('../lib/io/model-folder') as typeof ModelFolderModule;
const { makeTrainFixture, runOptions } = require('./train-fixture') as typeof FixtureModule;
const { persistentBytes } = require('../lib/tensor/memory') as typeof MemoryModule;
const { bf16ToF32, f32ToBf16 } = require('../lib/tensor/dtype') as typeof DtypeModule;
const { axpy } = require('../lib/cuda/mixed') as typeof MixedModule;
const { trainSteps } = require('./train-steps') as typeof TrainStepsModule;
/* eslint-enable @typescript-eslint/no-require-imports */

// The cuda attention kernel needs a head dim that is a multiple of 32: dim 64 in 2 query heads sharing 1 KV head.
const TINY = { dim: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, vocab_size: 128, max_seq_len: 32, hidden_dim: 128 };
const B = 2;
const T = 16;
const STEPS = 5;
const LOSS_RTOL = 0.02;
// Parameter gradients after one backward, relative L2 distance to the CPU's (measured: under 1%).
const GRAD_RTOL = 0.03;

/** Seeded token batches (a repeating pattern plus noise, so there is something to learn); mask 0 on a few tokens. */
function batches(steps: number, vocab: number): { x: Int32Array; y: Int32Array; mask: Float32Array }[] {
  let state = 12345;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  return Array.from({ length: steps }, () => {
    const ids = Int32Array.from({ length: B * (T + 1) }, (_, i) => 1 + ((i * 7 + Math.floor(rand() * 3)) % (vocab - 1)));
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T === T - 1 ? 0 : 1));
    return { x, y, mask };
  });
}

/** The parameter gradients (as f32) of one backward from the seed-7 initialisation. */
function firstGradients(device: 'cpu' | 'cuda'): Map<string, Float32Array> {
  const model = new MiniMind(resolveConfig(TINY), device);
  initWeights(model, 7);
  const [batch] = batches(1, TINY.vocab_size);
  backward(model.loss(Tensor.from(batch.x, [B, T], 'i32', device), Tensor.from(batch.y, [B, T], 'i32', device), null));
  resetStepArenas();
  const grads = new Map<string, Float32Array>();
  for (const p of model.parameters()) {
    const g = p.grad!.toArray();
    grads.set(p.name, g instanceof Uint16Array ? bf16ToF32(g) : (g as Float32Array));
  }
  model.dispose();
  return grads;
}

function trainLosses(device: 'cpu' | 'cuda'): number[] {
  const cfg = resolveConfig(TINY);
  const model = new MiniMind(cfg, device);
  initWeights(model, 7);
  const data = batches(STEPS, cfg.vocab_size);
  try {
    return trainSteps(model.parameters(), { lr: 3e-3, weightDecay: 0.01 }, STEPS, (step) => model.loss(
      Tensor.from(data[step].x, [B, T], 'i32', device), Tensor.from(data[step].y, [B, T], 'i32', device),
      Tensor.from(data[step].mask, [B, T], 'f32', device)));
  } finally {
    model.dispose();
  }
}

describe('training on the emulated cuda device', () => {
  test('axpy (y += alpha x, the "+=" of the cuda backward) against a double reference, every dtype mix', () => {
    const n = 1001; // not a multiple of the block size
    const values = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * (1 + i / 100));
    const onDevice = (v: Float32Array, dtype: 'f32' | 'bf16') =>
      dtype === 'f32' ? Tensor.from(v, [n], 'f32', 'cuda') : Tensor.from(f32ToBf16(v), [n], 'bf16', 'cuda');
    const read = (t: TensorModule.Tensor) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : (t.toArray() as Float32Array));
    for (const yType of ['f32', 'bf16'] as const) {
      for (const xType of ['f32', 'bf16'] as const) {
        const [y, x] = [onDevice(values(1), yType), onDevice(values(2), xType)];
        const [y0, x0] = [read(y), read(x)];
        axpy(y, x, -0.75);
        const got = read(y);
        // fp32 math (errors relative to the operands' size), then for a bf16 y one rounding to 8 significant bits.
        for (let i = 0; i < n; i++) {
          const want = y0[i] - 0.75 * x0[i];
          const bound = 1e-6 * (Math.abs(y0[i]) + Math.abs(0.75 * x0[i])) + (yType === 'bf16' ? Math.abs(want) / 256 : 0);
          expect(Math.abs(got[i] - want)).toBeLessThanOrEqual(bound);
        }
      }
    }
    resetStepArenas();
  });

  test('bf16 losses track the CPU run step by step, and fall', () => {
    const cpu = trainLosses('cpu');
    const cuda = trainLosses('cuda');
    console.log(`cpu  ${cpu.map((l) => l.toFixed(5)).join(' ')}\ncuda ${cuda.map((l) => l.toFixed(5)).join(' ')}`);
    for (let s = 0; s < STEPS; s++) expect(Math.abs(cuda[s] - cpu[s])).toBeLessThan(LOSS_RTOL * cpu[s]);
    expect(cpu[STEPS - 1]).toBeLessThan(cpu[0]);
    expect(cuda[STEPS - 1]).toBeLessThan(cuda[0]);
    expect(persistentBytes.cuda).toBe(0);
  });

  test('parameter gradients (f32 on cuda) match the CPU within bf16 rounding', () => {
    const cpu = firstGradients('cpu');
    const cuda = firstGradients('cuda');
    for (const [name, g] of cpu) {
      const h = cuda.get(name)!;
      let norm = 0;
      let diff = 0;
      for (let i = 0; i < g.length; i++) {
        norm += g[i] ** 2;
        diff += (g[i] - h[i]) ** 2;
      }
      expect({ name, rel: Math.sqrt(diff / norm) < GRAD_RTOL }).toEqual({ name, rel: true });
    }
  });

  test('runTraining --device cuda: checkpoint, model folder, reloaded on the CPU', async () => {
    const fixture = await makeTrainFixture();
    try {
      const config = path.join(fixture.dir, 'tiny-cuda.json');
      fs.writeFileSync(config, JSON.stringify({ ...TINY, vocab_size: 384, max_seq_len: 64 }));
      const out = path.join(fixture.dir, 'run-cuda');
      const result = await runTraining(runOptions(fixture, {
        device: 'cuda', modelConfig: config, out, batchSize: 2, seqLen: 16, maxSteps: 4, saveEvery: 2,
      }));
      expect(result.steps).toBe(4);
      expect(result.losses.every(Number.isFinite)).toBe(true);
      expect(result.losses[3]).toBeLessThan(result.losses[0]);
      expect(result.lastCheckpoint).toBe(path.join(out, 'step-4'));
      expect(fs.existsSync(path.join(out, 'step-4'))).toBe(true);
      expect(persistentBytes.cuda).toBe(0);
      // The folder holds the f32 master weights: loaded on the CPU and on cuda, the two evaluate the same loss.
      const ids = Int32Array.from({ length: 17 }, (_, i) => 1 + ((i * 5) % 383));
      const evalLoss = (device: 'cpu' | 'cuda') => {
        const model = loadModelFolder(out, device);
        try {
          return noGrad(() => model.loss(Tensor.from(ids.subarray(0, 16), [1, 16], 'i32', device),
            Tensor.from(ids.subarray(1), [1, 16], 'i32', device), null).item());
        } finally {
          resetStepArenas();
          model.dispose();
        }
      };
      const cpuLoss = evalLoss('cpu');
      expect(Number.isFinite(cpuLoss)).toBe(true);
      expect(Math.abs(evalLoss('cuda') - cpuLoss)).toBeLessThan(LOSS_RTOL * cpuLoss);
    } finally {
      fs.rmSync(fixture.dir, { recursive: true, force: true });
    }
  });
});
