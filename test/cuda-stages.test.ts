// The training stages and generation that device 'cuda' gained after plain training (issue #6), on the emulated
// device (the CUDA kernels compiled for the CPU), each against the CPU:
//   kernels   tokenLogProbs forward/backward (DPO), mul, Adam with L2 weight decay, decode attention against a
//             KV cache (under three fiber orders with poisoned shared memory);
//   stages    short DPO, `--optimizer adam --weight-decay 0.1` and LoRA runs whose losses track the CPU's, and
//             runTraining (the `train` command) for sft, dpo with adam + L2 decay, and lora on --device cuda;
//   decoding  greedy generation with the bf16 KV cache equals recomputation without a cache, starts like the
//             CPU's, and `generate --device cuda` prints the same tokens.
//
// Tolerances (bf16 keeps 8 significant bits: one rounding is a relative error of at most 2^-9):
//   log-probs        f32 outputs from bf16 logits in both ops: fp32 sums only, 1e-4 absolute.
//   their gradients  bf16 on cuda: 2^-7 relative + 1e-4 absolute (one rounding, fp32 math).
//   mul              bf16 output: 2^-7 relative; its f32 gradient 1e-6 relative.
//   Adam (L2)        f32 masters: the same formula in fp32, 1e-6 relative; bf16 params equal bf16(master).
//   decode attention bf16 output, an average of bf16 values: 2^-7 relative + 1e-3 absolute.
//   training runs    the cuda model computes a slightly different (bf16) function: losses within 2% (as in
//                    test/cuda-train.test.ts), and for DPO the change from log 2 within 25% of the CPU's.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as TensorModule from '../lib/tensor/tensor';
import type * as ModelModule from '../lib/nn/model';
import type * as InitModule from '../lib/nn/init';
import type * as TapeModule from '../lib/autograd/tape';
import type * as AdamWModule from '../lib/optim/adamw';
import type * as MemoryModule from '../lib/tensor/memory';
import type * as ConfigModule from '../lib/nn/config';
import type * as DtypeModule from '../lib/tensor/dtype';
import type * as MixedModule from '../lib/cuda/mixed';
import type * as LossModule from '../lib/ops/loss';
import type * as ElementwiseModule from '../lib/ops/elementwise';
import type * as AttentionModule from '../lib/ops/attention';
import type * as DpoModule from '../lib/train/dpo';
import type * as GenerateModule from '../lib/infer/generate';
import type * as ModelFolderModule from '../lib/io/model-folder';
import type * as LoraModule from '../lib/train/lora';
import type * as RunModule from '../lib/train/run';
import type * as FixtureModule from './train-fixture';
import type * as HelpersModule from './helpers';
import type * as CudaHelpersModule from './cuda-helpers';
import type * as TrainStepsModule from './train-steps';

// Device 'cuda' must be the emulator: set before lib/native.ts is loaded (imports above are types only).
process.env.MINIMIND_CUDA_EMULATE = '1';
/* eslint-disable @typescript-eslint/no-require-imports */
const { Tensor } = require('../lib/tensor/tensor') as typeof TensorModule;
const { MiniMind } = require('../lib/nn/model') as typeof ModelModule;
const { initWeights } = require('../lib/nn/init') as typeof InitModule;
const { backward } = require('../lib/autograd/tape') as typeof TapeModule;
const { AdamW } = require('../lib/optim/adamw') as typeof AdamWModule;
const { resetStepArenas, persistentBytes } = require('../lib/tensor/memory') as typeof MemoryModule;
const { resolveConfig } = require('../lib/nn/config') as typeof ConfigModule;
const { bf16ToF32, f32ToBf16 } = require('../lib/tensor/dtype') as typeof DtypeModule;
const { workingCopy, releaseWorkingCopies } = require('../lib/cuda/mixed') as typeof MixedModule;
const { tokenLogProbs } = require('../lib/ops/loss') as typeof LossModule;
const { add, mul } = require('../lib/ops/elementwise') as typeof ElementwiseModule;
const { attention } = require('../lib/ops/attention') as typeof AttentionModule;
const { dpoLoss, referenceRows, sequenceTokenLogps } = require('../lib/train/dpo') as typeof DpoModule;
const { generate } = require('../lib/infer/generate') as typeof GenerateModule;
const { loadModelFolder, saveModelFolder } = require('../lib/io/model-folder') as typeof ModelFolderModule;
const { attachLora } = require('../lib/train/lora') as typeof LoraModule;
const { runTraining } = require('../lib/train/run') as typeof RunModule;
const { makeTrainFixture, runOptions } = require('./train-fixture') as typeof FixtureModule;
const { expectClose, randn } = require('./helpers') as typeof HelpersModule;
const { Buffers, backends, roundBf16 } = require('./cuda-helpers') as typeof CudaHelpersModule;
const { trainSteps } = require('./train-steps') as typeof TrainStepsModule;
/* eslint-enable @typescript-eslint/no-require-imports */

type Device = 'cpu' | 'cuda';
type T = TensorModule.Tensor;

// The cuda attention kernel needs a head dim that is a multiple of 32: dim 64 in 2 query heads sharing 1 KV head.
const TINY = { dim: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, vocab_size: 128, max_seq_len: 32, hidden_dim: 128 };
const ROOT = path.join(__dirname, '..');

/** Host values of a tensor as f32 (bf16 widened). */
const read = (t: T) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : (t.toArray() as Float32Array));
/** values rounded to bf16, as f32: what both devices compute from. */
const bf16Values = (v: Float32Array) => Float32Array.from(roundBf16(v));
/** A tensor of bf16-rounded values: f32 on the CPU, bf16 on cuda. */
function input(values: Float32Array, shape: number[], device: Device, requiresGrad = false): T {
  const t = device === 'cpu' ? Tensor.from(bf16Values(values), shape, 'f32', 'cpu')
    : Tensor.from(f32ToBf16(values), shape, 'bf16', 'cuda');
  t.requiresGrad = requiresGrad;
  return t;
}

// Each test frees the cuda memory it allocated (compared with what was held before it: see the runTraining test).
let cudaBytesBefore = 0;
beforeEach(() => {
  cudaBytesBefore = persistentBytes.cuda;
});
afterEach(() => resetStepArenas());

describe('cuda kernels of the training stages against the CPU ops', () => {
  test('tokenLogProbs: log-probs and their gradient (overwritten, then accumulated)', () => {
    const N = 7;
    const V = 37; // odd: rows end mid-warp
    const logits = randn(N * V, 3, 2);
    const targets = Int32Array.from({ length: N }, (_, i) => (i * 11) % V);
    const dlogp = randn(N, 4);
    const run = (device: Device, twice: boolean) => {
      const x = input(logits, [N, V], device, true);
      const ids = Tensor.from(targets, [N], 'i32', device);
      // Twice: the second backward accumulates into the gradient the first one wrote.
      const logp = twice ? add(tokenLogProbs(x, ids), tokenLogProbs(x, ids)) : tokenLogProbs(x, ids);
      const values = read(logp);
      backward(logp, Tensor.from(dlogp, [N], 'f32', device));
      return { values, grad: read(x.grad!) };
    };
    const cpu = run('cpu', false);
    const cuda = run('cuda', false);
    expectClose(cuda.values, cpu.values, 1e-4, 0, 'logp');
    expectClose(cuda.grad, cpu.grad, 1e-4, 1 / 128, 'dlogits');
    const cudaTwice = run('cuda', true);
    expectClose(cudaTwice.values, cpu.values.map((v) => 2 * v), 2e-4, 0, 'logp twice');
    expectClose(cudaTwice.grad, cpu.grad.map((v) => 2 * v), 2e-4, 1 / 64, 'dlogits twice');
  });

  test('mul: bf16 * f32 forward and both gradients', () => {
    const n = 1001; // not a multiple of the block size
    const [a, b, dout] = [randn(n, 5), randn(n, 6), randn(n, 7)];
    const run = (device: Device) => {
      const x = input(a, [n], device, true);
      const y = Tensor.from(bf16Values(b), [n], 'f32', device); // f32 on both devices
      y.requiresGrad = true;
      const out = mul(x, y);
      const values = read(out);
      backward(out, Tensor.from(bf16Values(dout), [n], 'f32', device));
      return { values, dx: read(x.grad!), dy: read(y.grad!), dtype: out.dtype };
    };
    const cpu = run('cpu');
    const cuda = run('cuda');
    expect(cuda.dtype).toBe('bf16');
    expectClose(cuda.values, cpu.values, 1e-6, 1 / 128, 'a * b');
    expectClose(cuda.dx, cpu.dx, 1e-6, 1 / 128, 'da (bf16)');
    expectClose(cuda.dy, cpu.dy, 1e-6, 1e-6, 'db (f32)');
  });

  test('Adam with L2 weight decay: f32 masters as the CPU kernel, bf16 params their rounding', () => {
    const n = 1001;
    const init = randn(n, 8);
    const run = (device: Device) => {
      const p = Tensor.persistent([n], 'f32', device).upload(init);
      p.requiresGrad = true;
      const optimizer = new AdamW([p], { lr: 1e-2, weightDecay: 0.1, decoupled: false, beta2: 0.95 });
      for (let step = 0; step < 3; step++) {
        if (!p.grad) p.grad = Tensor.persistent([n], 'f32', device);
        p.grad.upload(randn(n, 20 + step));
        optimizer.step();
      }
      const master = read(p);
      const param = device === 'cuda' ? read(workingCopy(p)) : null;
      optimizer.dispose();
      if (device === 'cuda') releaseWorkingCopies([p]);
      p.grad!.dispose();
      p.dispose();
      return { master, param };
    };
    const cpu = run('cpu');
    const cuda = run('cuda');
    expectClose(cuda.master, cpu.master, 1e-6, 1e-6, 'master');
    expect(Array.from(cuda.param!)).toEqual(Array.from(bf16Values(cuda.master)));
    // The L2 term did something: without it the result differs.
    expect(cpu.master.some((v, i) => Math.abs(v - init[i]) > 1e-3)).toBe(true);
  });

  // [B, T, Tk, NH, NKV, HD, causal]: one query on a one-key cache, a few queries on a longer one (GQA; warps
  // without keys), MiniMind v1's head dim 48 and the largest one, a cache of several 32-key chunks per warp (the
  // online softmax rescales), and a non-causal call.
  const DECODE_CASES: [number, number, number, number, number, number, boolean][] = [
    [2, 1, 1, 2, 1, 32, true],
    [2, 3, 37, 4, 2, 48, true],
    [1, 6, 40, 2, 2, 64, true],
    [1, 1, 70, 2, 1, 128, true],
    [1, 2, 300, 2, 1, 64, true],
    [1, 2, 5, 2, 1, 16, false],
  ];
  test.each(backends().map((b) => [b.name, b] as [string, CudaHelpersModule.Backend]))(
    'decode attention against a KV cache (%s) matches the CPU decode kernel', (_name, backend) => {
      backend.setup();
      for (const [B, T, Tk, NH, NKV, HD, causal] of DECODE_CASES) {
        const [q, k, v] = [randn(B * T * NH * HD, 9), randn(B * Tk * NKV * HD, 10), randn(B * Tk * NKV * HD, 11)];
        const cpuOut = attention(input(q, [B, T, NH, HD], 'cpu'), input(k, [B, Tk, NKV, HD], 'cpu'),
          input(v, [B, Tk, NKV, HD], 'cpu'), { causal, decode: true });
        const buf = new Buffers(backend.k);
        try {
          const out = buf.alloc(B * T * NH * HD * 2);
          backend.k.attentionDecode(out, buf.bf16(q), buf.bf16(k), buf.bf16(v), B, T, Tk, NH, NKV, HD, 1 / Math.sqrt(HD),
            causal);
          expectClose(buf.readBf16(out, B * T * NH * HD), read(cpuOut), 1e-3, 1 / 128,
            `decode B=${B} T=${T} Tk=${Tk} NH=${NH} NKV=${NKV} HD=${HD}`);
        } finally {
          buf.free();
        }
      }
    });
});

/** Seeded token batches: a repeating pattern plus noise (something to learn). */
function tokenBatch(rows: number, T: number, vocab: number, seed: number): { x: Int32Array; y: Int32Array } {
  let state = seed;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  const ids = Int32Array.from({ length: rows * (T + 1) }, (_, i) => 1 + ((i * 7 + Math.floor(rand() * 3)) % (vocab - 1)));
  const x = new Int32Array(rows * T);
  const y = new Int32Array(rows * T);
  for (let r = 0; r < rows; r++) {
    x.set(ids.subarray(r * (T + 1), r * (T + 1) + T), r * T);
    y.set(ids.subarray(r * (T + 1) + 1, (r + 1) * (T + 1)), r * T);
  }
  return { x, y };
}

/** The seed-7 tiny model. */
function tinyModel(device: Device): ModelModule.MiniMind {
  const model = new MiniMind(resolveConfig(TINY), device);
  initWeights(model, 7);
  return model;
}

/** Trains `params` (default: all of the model's) for `steps` steps; `lossOf` gives each step's loss. */
function trainModel(model: ModelModule.MiniMind, steps: number, optimizerOpts: AdamWModule.AdamWOptions,
  lossOf: (model: ModelModule.MiniMind, step: number) => T, params = model.parameters()): number[] {
  return trainSteps(params, optimizerOpts, steps, (step) => lossOf(model, step));
}

/** trainModel on a fresh seed-7 tiny model, disposed after. */
function train(device: Device, steps: number, optimizerOpts: AdamWModule.AdamWOptions,
  lossOf: (model: ModelModule.MiniMind, step: number) => T): number[] {
  const model = tinyModel(device);
  try {
    return trainModel(model, steps, optimizerOpts, lossOf);
  } finally {
    model.dispose();
  }
}

describe('training stages on the emulated cuda device track the CPU', () => {
  test('DPO: starts at log 2 (policy = reference), and the loss moves as on the CPU', () => {
    const P = 2; // pairs: chosen rows [0, P), rejected [P, 2P)
    const T = 16;
    const mask = Float32Array.from({ length: 2 * P * T }, (_, i) => (i % T >= 6 ? 1 : 0)); // the answer tokens
    const dpoLosses = (device: Device) => {
      const reference = tinyModel(device);
      try {
        return train(device, 4, { lr: 5e-3 }, (model, step) => {
          const { x, y } = tokenBatch(2 * P, T, TINY.vocab_size, 100 + step);
          const [xs, ys] = [Tensor.from(x, [2 * P, T], 'i32', device), Tensor.from(y, [2 * P, T], 'i32', device)];
          const refRows = referenceRows(reference, xs, ys, mask, 'sum');
          return dpoLoss(sequenceTokenLogps(model, xs, ys), mask, refRows, T, 0.1, 'sum').loss;
        });
      } finally {
        reference.dispose();
      }
    };
    const cpu = dpoLosses('cpu');
    const cuda = dpoLosses('cuda');
    console.log(`DPO cpu  ${cpu.map((l) => l.toFixed(5)).join(' ')}\nDPO cuda ${cuda.map((l) => l.toFixed(5)).join(' ')}`);
    expect(cuda[0]).toBeCloseTo(Math.log(2), 6);
    for (let s = 1; s < cpu.length; s++) {
      const [moveCpu, moveCuda] = [cpu[s] - Math.log(2), cuda[s] - Math.log(2)];
      expect(Math.abs(moveCuda - moveCpu)).toBeLessThan(0.25 * Math.abs(moveCpu) + 1e-4);
    }
    expect(Math.min(...cuda.slice(1))).toBeLessThan(cuda[0]);
    expect(persistentBytes.cuda).toBe(cudaBytesBefore);
  });

  test('--optimizer adam --weight-decay 0.1 (L2): losses track the CPU run and fall', () => {
    const B = 2;
    const T = 16;
    const adamLosses = (device: Device) => train(device, 5, { lr: 3e-3, weightDecay: 0.1, decoupled: false },
      (model, step) => {
        const { x, y } = tokenBatch(B, T, TINY.vocab_size, 200 + step);
        return model.loss(Tensor.from(x, [B, T], 'i32', device), Tensor.from(y, [B, T], 'i32', device), null);
      });
    const cpu = adamLosses('cpu');
    const cuda = adamLosses('cuda');
    console.log(`adam cpu  ${cpu.map((l) => l.toFixed(5)).join(' ')}\nadam cuda ${cuda.map((l) => l.toFixed(5)).join(' ')}`);
    for (let s = 0; s < cpu.length; s++) expect(Math.abs(cuda[s] - cpu[s])).toBeLessThan(0.02 * cpu[s]);
    expect(cuda[cuda.length - 1]).toBeLessThan(cuda[0]);
  });

  test('LoRA (adapters on wq and w2, base frozen): losses track the CPU run and fall', () => {
    const B = 2;
    const T = 16;
    const loraLosses = (device: Device) => {
      const model = tinyModel(device);
      const adapters = attachLora(model, { rank: 4, alpha: 8, targets: ['wq', 'w2'] }, 3);
      try {
        return trainModel(model, 4, { lr: 1e-2 }, (m, step) => {
          const { x, y } = tokenBatch(B, T, TINY.vocab_size, 400 + step);
          return m.loss(Tensor.from(x, [B, T], 'i32', device), Tensor.from(y, [B, T], 'i32', device), null);
        }, adapters);
      } finally {
        // Adapters are not the model's parameters: freed here (with their bf16 working copies on cuda).
        releaseWorkingCopies(adapters);
        for (const t of adapters) t.dispose();
        model.dispose();
      }
    };
    const cpu = loraLosses('cpu');
    const cuda = loraLosses('cuda');
    console.log(`lora cpu  ${cpu.map((l) => l.toFixed(5)).join(' ')}\nlora cuda ${cuda.map((l) => l.toFixed(5)).join(' ')}`);
    for (let s = 0; s < cpu.length; s++) expect(Math.abs(cuda[s] - cpu[s])).toBeLessThan(0.02 * cpu[s]);
    expect(cuda[cuda.length - 1]).toBeLessThan(cuda[0]);
    expect(persistentBytes.cuda).toBe(cudaBytesBefore);
  });
});

test('runTraining --device cuda: sft, lora, and dpo with --optimizer adam --weight-decay 0.1', async () => {
  const fixture = await makeTrainFixture();
  try {
    // An initial model folder with the fixture's vocabulary and a head dim the cuda attention kernel takes.
    const init = path.join(fixture.dir, 'init');
    const base = new MiniMind(resolveConfig({ ...TINY, vocab_size: 384, max_seq_len: 64 }), 'cpu');
    initWeights(base, 1);
    saveModelFolder(base, init, fixture.tokenizer);
    base.dispose();
    const run = (o: Partial<RunModule.RunOptions>) => runTraining(runOptions(fixture, {
      device: 'cuda', init, data: fixture.sft, seqLen: null, batchSize: 2, maxSteps: 3, saveEvery: 3, ...o,
    }));
    const sft = await run({ stage: 'sft', out: path.join(fixture.dir, 'sft') });
    expect(sft.losses.length === 3 && sft.losses.every(Number.isFinite)).toBe(true);
    const dpo = await run({ stage: 'dpo', data: fixture.dpo, out: path.join(fixture.dir, 'dpo'), optimizer: 'adam',
      weightDecay: 0.1, lr: 5e-3 });
    expect(dpo.losses[0]).toBeCloseTo(Math.log(2), 5); // policy = reference at the first step
    expect(dpo.losses.every(Number.isFinite)).toBe(true);
    expect(persistentBytes.cuda).toBe(cudaBytesBefore);
    const lora = await run({ stage: 'lora', out: path.join(fixture.dir, 'lora') });
    expect(lora.losses.length === 3 && lora.losses.every(Number.isFinite)).toBe(true);
    expect(persistentBytes.cuda).toBe(cudaBytesBefore); // the adapters, their gradients and bf16 copies freed too
  } finally {
    fs.rmSync(fixture.dir, { recursive: true, force: true });
  }
});

describe('generation on the emulated cuda device', () => {
  const prompt = [1, 5, 9, 20, 33];
  const greedy = (model: ModelModule.MiniMind, kvCache: boolean) =>
    generate(model, prompt, { maxNewTokens: 10, temperature: 0, kvCache }).ids;

  test('greedy decode with the bf16 KV cache equals recomputation, starts like the CPU; the CLI agrees', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-cuda-stages-'));
    try {
      // A random model repeats one token; a few CPU steps on the "+7" pattern give greedy chains that move.
      const cpuModel = tinyModel('cpu');
      trainModel(cpuModel, 30, { lr: 1e-2 }, (model, step) => {
        const { x, y } = tokenBatch(4, 16, TINY.vocab_size, 300 + step);
        return model.loss(Tensor.from(x, [4, 16], 'i32', 'cpu'), Tensor.from(y, [4, 16], 'i32', 'cpu'), null);
      });
      const cpuTokens = greedy(cpuModel, true);
      saveModelFolder(cpuModel, dir, null);
      cpuModel.dispose();

      const cudaModel = loadModelFolder(dir, 'cuda');
      const cached = greedy(cudaModel, true);
      const recomputed = greedy(cudaModel, false);
      cudaModel.dispose();
      console.log(`greedy cpu ${cpuTokens.join(' ')}\ncuda cached ${cached.join(' ')}\ncuda recomputed ${recomputed.join(' ')}`);
      expect(cached).toHaveLength(10);
      expect(new Set(cached).size).toBeGreaterThan(3);
      expect(cached).toEqual(recomputed);
      // bf16 weights and activations: the chain may leave the CPU's at a near-tie, but not at once.
      expect(cached.slice(0, 3)).toEqual(cpuTokens.slice(0, 3));
      expect(persistentBytes.cuda).toBe(cudaBytesBefore);

      const r = spawnSync(process.execPath, ['-r', path.join(ROOT, 'scripts/register-ts.js'), path.join(ROOT, 'bin/cli.ts'),
        'generate', '--model', dir, '--prompt-ids', prompt.join(','), '--temperature', '0', '--max-new-tokens', '10',
        '--device', 'cuda', '--json'], { encoding: 'utf8', env: { ...process.env, MINIMIND_CUDA_EMULATE: '1' }, timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).ids).toEqual(cached);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
