// Mixture-of-experts routing on the CUDA backend (native/cuda/kernels/moe.cu): every kernel, forward and backward,
// against the CPU kernels (native/cpu/moe.cc, themselves checked against float64 references and finite differences
// in test/moe.test.ts) on the same bf16-rounded inputs; the ops of lib/ops/moe.ts with autograd on device 'cuda'
// against the CPU; a short training run of a tiny MoE model on 'cuda' against the CPU; and the CUDA case list of `bench kernels` (bench/kernels/cuda.ts) for a described device.
// Kernels run on the emulated device under forward, reverse and random fiber orders with poisoned shared memory,
// and on the GPU under `npm run test:gpu` (where device 'cuda' of the training run is the GPU too).
//
// Tolerances: routing (experts, offsets, order, positions) must be identical to the CPU's. On the emulator the
// scores and weights are bit-identical too (same float operations in the same order); on the GPU --use_fast_math
// makes expf approximate, so they are compared at 1e-5 relative. bf16 outputs carry one rounding (relative 2^-9)
// on top of fp32 math in a different order than the CPU's: |got - want| <= |want| / 128 + 1e-5. f32 sums over
// C or over the scores (dweights, the aux loss) differ from the CPU's only by fp32 summation order: 1e-4 relative.
import type { Backend } from './cuda-helpers';
import type * as CudaHelpersModule from './cuda-helpers';
import type * as NativeModule from '../lib/native';
import type * as TensorModule from '../lib/tensor/tensor';
import type * as ModelModule from '../lib/nn/model';
import type * as InitModule from '../lib/nn/init';
import type * as TapeModule from '../lib/autograd/tape';
import type * as MemoryModule from '../lib/tensor/memory';
import type * as ConfigModule from '../lib/nn/config';
import type * as BenchCudaModule from '../bench/kernels/cuda';
import type * as MoeModule from '../lib/ops/moe';
import type * as DtypeModule from '../lib/tensor/dtype';
import type * as HelpersModule from './helpers';
import type * as TrainStepsModule from './train-steps';

// Device 'cuda' of the training run is the emulator, except under `npm run test:gpu` (set before lib/native.ts
// loads; the imports above are types only).
if (process.env.MINIMIND_TEST_GPU !== '1') process.env.MINIMIND_CUDA_EMULATE = '1';
/* eslint-disable @typescript-eslint/no-require-imports */
const { randn } = require('./helpers') as typeof HelpersModule;
const { Buffers, backends, roundBf16 } = require('./cuda-helpers') as typeof CudaHelpersModule;
const { native } = require('../lib/native') as typeof NativeModule;
const { Tensor } = require('../lib/tensor/tensor') as typeof TensorModule;
const { MiniMind } = require('../lib/nn/model') as typeof ModelModule;
const { initWeights } = require('../lib/nn/init') as typeof InitModule;
const { backward } = require('../lib/autograd/tape') as typeof TapeModule;
const { resetStepArenas, persistentBytes } = require('../lib/tensor/memory') as typeof MemoryModule;
const { resolveConfig } = require('../lib/nn/config') as typeof ConfigModule;
const { moeAuxLoss, moeCombine, moeDispatch, moeRoute } = require('../lib/ops/moe') as typeof MoeModule;
const { bf16ToF32 } = require('../lib/tensor/dtype') as typeof DtypeModule;
const { cudaCaseList, tablePeak } = require('../bench/kernels/cuda') as typeof BenchCudaModule;
const { trainSteps } = require('./train-steps') as typeof TrainStepsModule;
/* eslint-enable @typescript-eslint/no-require-imports */

const BF16_RTOL = 1 / 128;
const BF16_ATOL = 1e-5;
const F32_RTOL = 1e-4;

function expectBf16Close(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = Math.abs(want[i]) * BF16_RTOL + BF16_ATOL;
    if (!(Math.abs(got[i] - want[i]) <= bound)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (bound ${bound})`);
    }
  }
}

function expectF32Close(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = rtol * (1 + Math.abs(want[i]));
    if (!(Math.abs(got[i] - want[i]) <= bound)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (bound ${bound})`);
    }
  }
}

/** A CPU tensor (step arena) holding values, for the CPU kernels. */
const cpuF32 = (values: ArrayLike<number>) => Tensor.from(Float32Array.from(values), [values.length], 'f32', 'cpu');
const cpuI32 = (n: number) => Tensor.empty([n], 'i32', 'cpu');

// [N, E, k, C]: T=1, odd sizes, and C that picks each row-pack width (8, 2 and 1 bf16 per access).
const SHAPES: [number, number, number, number][] = [
  [1, 4, 1, 32],
  [13, 8, 2, 40],
  [70, 4, 2, 96],
  [13, 4, 2, 33],
  [70, 8, 1, 50],
];

/** Gate logits rounded to bf16, with token 0's all equal (a tie everywhere: lower expert ids win). */
function gateLogits(N: number, E: number, seed: number): Float64Array {
  const z = roundBf16(randn(N * E, seed, 2));
  for (let e = 0; e < E; e++) z[e] = 0.5;
  return z;
}

/** Every output of one backend for one shape, to compare fiber orders bit for bit. */
type Outputs = Map<string, Float32Array | Int32Array>;

describe.each(SHAPES)('MoE kernels N=%i E=%i k=%i C=%i', (N, E, k, C) => {
  const NK = N * k;
  const B = N % 2 === 0 ? 2 : 1;
  const T = N / B;
  const logits = gateLogits(N, E, 10 + N + C);
  const renorm = k > 1;
  const dweights0 = randn(NK, 11);
  const dscores0 = randn(N * E, 12);
  const dlogits0 = roundBf16(randn(N * E, 13));
  const coef = randn(B * E, 14);
  const dscoresAux0 = randn(N * E, 15);
  const x = roundBf16(randn(N * C, 16));
  const dx0 = roundBf16(randn(N * C, 17));
  const dout = roundBf16(randn(NK * C, 18));
  const expertOut = roundBf16(randn(NK * C, 19));
  const dy = roundBf16(randn(N * C, 20));
  const dexpert0 = roundBf16(randn(NK * C, 21));
  const dw0 = randn(NK, 22);
  let firstBackend: Outputs | null = null;

  test.each(backends().map((b) => [b.name, b] as [string, Backend]))('%s: forward and backward match the CPU kernels', (_name, backend) => {
    backend.setup();
    const buf = new Buffers(backend.k);
    const kk = backend.k;
    const out: Outputs = new Map();
    try {
      // ---- router ----
      const scores = buf.alloc(4 * N * E), weights = buf.alloc(4 * NK), experts = buf.alloc(4 * NK);
      const offsets = buf.alloc(4 * (E + 1)), order = buf.alloc(4 * NK), positions = buf.alloc(4 * NK);
      kk.moeRoute(buf.bf16(logits), N, E, k, renorm, scores, weights, experts, offsets, order, positions);
      const cpu = {
        scores: Tensor.empty([N * E], 'f32', 'cpu'), weights: Tensor.empty([NK], 'f32', 'cpu'),
        experts: cpuI32(NK), offsets: cpuI32(E + 1), order: cpuI32(NK), positions: cpuI32(NK),
      };
      native.cpu.moeRoute(cpuF32(logits).ptr, N, E, k, renorm, cpu.scores.ptr, cpu.weights.ptr, cpu.experts.ptr,
        cpu.offsets.ptr, cpu.order.ptr, cpu.positions.ptr);
      const readI32 = (p: number, n: number) => {
        const host = new Int32Array(n);
        kk.synchronize();
        kk.download(host, p);
        return host;
      };
      for (const [name, p, n] of [['experts', experts, NK], ['offsets', offsets, E + 1], ['order', order, NK],
        ['positions', positions, NK]] as [keyof typeof cpu, number, number][]) {
        const got = readI32(p, n);
        expect({ name, got: Array.from(got) }).toEqual({ name, got: Array.from(cpu[name].toArray()) });
        out.set(name, got);
      }
      const exact = backend.name.startsWith('emu');
      out.set('scores', buf.readF32(scores, N * E));
      out.set('weights', buf.readF32(weights, NK));
      expectF32Close(out.get('scores')!, cpu.scores.toArray() as Float32Array, exact ? 0 : 1e-5, 'scores');
      expectF32Close(out.get('weights')!, cpu.weights.toArray() as Float32Array, exact ? 0 : 1e-5, 'weights');
      // Token 0's tie: experts 0..k-1 in order.
      expect(Array.from(out.get('experts')!.subarray(0, k))).toEqual(Array.from({ length: k }, (_, j) => j));

      // ---- router backward: from both gradients, from the weights' only ----
      for (const withScores of [true, false]) {
        const dlogits = buf.bf16(dlogits0);
        kk.moeRouteBackward(dlogits, scores, weights, experts, buf.f32(dweights0), withScores ? buf.f32(dscores0) : 0,
          N, E, k, renorm);
        const want = cpuF32(dlogits0);
        native.cpu.moeRouteBackward(want.ptr, cpu.scores.ptr, cpu.weights.ptr, cpu.experts.ptr, cpuF32(dweights0).ptr,
          withScores ? cpuF32(dscores0).ptr : 0, N, E, k, renorm);
        const got = buf.readBf16(dlogits, N * E);
        expectBf16Close(got, want.toArray(), `dlogits (dscores ${withScores})`);
        out.set(`dlogits ${withScores}`, got);
      }

      // ---- aux loss ----
      const aux = buf.alloc(4);
      kk.moeAuxLoss(aux, scores, buf.f32(coef), B, T, E);
      const auxWant = Tensor.empty([1], 'f32', 'cpu');
      native.cpu.moeAuxLoss(auxWant.ptr, cpu.scores.ptr, cpuF32(coef).ptr, B, T, E);
      out.set('aux', buf.readF32(aux, 1));
      expectF32Close(out.get('aux')!, auxWant.toArray(), F32_RTOL, 'aux loss');
      const dscoresAux = buf.f32(dscoresAux0);
      kk.moeAuxLossBackward(dscoresAux, buf.f32([0.7]), buf.f32(coef), B, T, E);
      const dscoresAuxWant = cpuF32(dscoresAux0);
      native.cpu.moeAuxLossBackward(dscoresAuxWant.ptr, cpuF32([0.7]).ptr, cpuF32(coef).ptr, B, T, E);
      out.set('daux', buf.readF32(dscoresAux, N * E));
      expectF32Close(out.get('daux')!, dscoresAuxWant.toArray(), 1e-6, 'aux backward');

      // ---- dispatch: an exact copy; backward sums each token's rows ----
      const dispatched = buf.alloc(2 * NK * C);
      kk.moeDispatch(dispatched, buf.bf16(x), order, N, k, C);
      const dispatchedWant = Tensor.empty([NK * C], 'f32', 'cpu');
      native.cpu.moeDispatch(dispatchedWant.ptr, cpuF32(x).ptr, cpu.order.ptr, N, k, C);
      out.set('dispatch', buf.readBf16(dispatched, NK * C));
      expect(Array.from(out.get('dispatch')!)).toEqual(Array.from(dispatchedWant.toArray()));
      const dx = buf.bf16(dx0);
      kk.moeDispatchBackward(dx, buf.bf16(dout), positions, N, k, C);
      const dxWant = cpuF32(dx0);
      native.cpu.moeDispatchBackward(dxWant.ptr, cpuF32(dout).ptr, cpu.positions.ptr, N, k, C);
      out.set('ddispatch', buf.readBf16(dx, N * C));
      expectBf16Close(out.get('ddispatch')!, dxWant.toArray(), 'dispatch backward');

      // ---- combine, and its backward into the expert rows and the weights (together and each alone) ----
      const y = buf.alloc(2 * N * C);
      const eo = buf.bf16(expertOut);
      kk.moeCombine(y, eo, weights, positions, N, k, C);
      const yWant = Tensor.empty([N * C], 'f32', 'cpu');
      native.cpu.moeCombine(yWant.ptr, cpuF32(expertOut).ptr, cpu.weights.ptr, cpu.positions.ptr, N, k, C);
      out.set('combine', buf.readBf16(y, N * C));
      expectBf16Close(out.get('combine')!, yWant.toArray(), 'combine');
      const dexpertWant = cpuF32(dexpert0);
      const dwWant = cpuF32(dw0);
      native.cpu.moeCombineBackward(dexpertWant.ptr, dwWant.ptr, cpuF32(dy).ptr, cpuF32(expertOut).ptr,
        cpu.weights.ptr, cpu.order.ptr, cpu.positions.ptr, N, k, C);
      for (const which of ['both', 'rows', 'weights'] as const) {
        const dexpert = buf.bf16(dexpert0);
        const dw = buf.f32(dw0);
        kk.moeCombineBackward(which === 'weights' ? 0 : dexpert, which === 'rows' ? 0 : dw, buf.bf16(dy), eo, weights,
          order, positions, N, k, C);
        const gotRows = buf.readBf16(dexpert, NK * C);
        const gotWeights = buf.readF32(dw, NK);
        if (which === 'weights') expect(Array.from(gotRows)).toEqual(Array.from(roundBf16(dexpert0)));
        else expectBf16Close(gotRows, dexpertWant.toArray(), `combine backward rows (${which})`);
        if (which === 'rows') expect(Array.from(gotWeights)).toEqual(Array.from(Float32Array.from(dw0)));
        else expectF32Close(gotWeights, dwWant.toArray(), F32_RTOL, `combine backward weights (${which})`);
        out.set(`dcombine ${which}`, gotRows);
        out.set(`dweights ${which}`, gotWeights);
      }

      // Deterministic: every fiber order of the emulator gives the same bits.
      if (exact) {
        if (!firstBackend) firstBackend = out;
        else for (const [name, v] of out) expect({ name, same: Buffer.compare(Buffer.from(v.buffer), Buffer.from(firstBackend.get(name)!.buffer)) }).toEqual({ name, same: 0 });
      }
    } finally {
      buf.free();
      resetStepArenas();
    }
  });
});

test('bad arguments give clear errors', () => {
  const [backend] = backends();
  backend.setup();
  expect(() => backend.k.moeRoute(0, 4, 4, 9, true, 0, 0, 0, 0, 0, 0)).toThrow(/moe_route: k must be in \[1, 8\]/);
  expect(() => backend.k.moeRoute(0, 4, 2, 3, true, 0, 0, 0, 0, 0, 0)).toThrow(/moe_route: E must be at least k/);
});

// ---- the ops of lib/ops/moe.ts on device 'cuda' (bf16 rows, f32 router, gradient sinks) against the CPU ----

/** Relative L2 distance of a from b. */
function relDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

test.each([['combine', 1], ['aux loss', 2]] as [string, number][])(
  'moeRoute -> moeDispatch -> moeCombine (backward from %s) on cuda: same routing, gradients within bf16 rounding',
  (_from, seed) => {
    const [N, E, k, C, B] = [24, 4, 2, 40, 2];
    const logits = roundBf16(randn(N * E, seed, 2));
    const x = roundBf16(randn(N * C, seed + 1));
    const dy = roundBf16(randn(N * C, seed + 2));
    const run = (device: 'cpu' | 'cuda') => {
      const z = Tensor.from(Float32Array.from(logits), [N, E], 'f32', device);
      const xt = Tensor.from(Float32Array.from(x), [N, C], 'f32', device);
      z.requiresGrad = true;
      xt.requiresGrad = true;
      // Identity experts with renormalised weights would make y = x whatever the router (zero gradient to it).
      const routing = moeRoute(z, k, seed !== 1);
      const aux = moeAuxLoss(routing, B, N / B, 0.1, true);
      const y = moeCombine(moeDispatch(xt, routing), routing); // identity experts: y[t] = x[t] * sum of weights
      if (seed === 1) backward(y, Tensor.from(Float32Array.from(dy), [N, C], 'f32', device));
      else backward(aux);
      const read = (t: TensorModule.Tensor) => (t.dtype === 'bf16' ? bf16ToF32(t.toArray() as Uint16Array) : Float32Array.from(t.toArray()));
      const result = { experts: Array.from(routing.experts), offsets: routing.offsets, aux: aux.item(), y: read(y),
        dz: read(z.grad!), dx: xt.grad ? read(xt.grad) : null };
      resetStepArenas();
      return result;
    };
    const cpu = run('cpu');
    const cuda = run('cuda');
    expect(cuda.experts).toEqual(cpu.experts);
    expect(cuda.offsets).toEqual(cpu.offsets);
    expect(Math.abs(cuda.aux - cpu.aux)).toBeLessThan(F32_RTOL * Math.abs(cpu.aux));
    expectBf16Close(cuda.y, cpu.y, 'y');
    // One bf16 rounding per step on the way (dexpert rows, dx, dlogits): measured 1e-3 to 2.3e-3.
    expect(relDistance(cuda.dz, cpu.dz)).toBeLessThan(1e-2);
    if (seed === 1) expect(relDistance(cuda.dx!, cpu.dx!)).toBeLessThan(1e-2);
    else expect(cuda.dx).toBeNull();
  });

// ---- `bench kernels`: the GPU case list, built for a described device and run once at tiny shapes ----

test('bench/kernels/cuda.ts: peaks by device name, and every kernel family in the case list', () => {
  expect(tablePeak('NVIDIA H200')).toEqual({ gflops: 989e3, gbps: 4.8e3, source: 'table' });
  expect(tablePeak('NVIDIA H100 80GB HBM3')).toEqual({ gflops: 989e3, gbps: 3.35e3, source: 'table' });
  expect(tablePeak('NVIDIA A100-SXM4-80GB')?.gflops).toBe(312e3);
  expect(tablePeak('NVIDIA GeForce RTX 4090')).toBeNull();

  const [backend] = backends();
  backend.setup();
  const tiny = { B: 1, T: 32, C: 64, NH: 2, NKV: 1, HD: 32, hidden: 96, V: 128, longT: [64], E: 4, topK: 2, params: 4096 };
  const list = cudaCaseList(backend.k, tablePeak('NVIDIA H200')!, tiny);
  const families = ['gemm', 'attention', 'rmsnorm', 'swiglu', 'rope', 'embedding', 'cross_entropy', 'adamw',
    'sum_squares', 'moe_route', 'moe_dispatch', 'moe_combine', 'token_logprobs', 'attention_decode', 'adam_l2'];
  expect([...new Set(list.map((c) => c.kernel))].sort()).toEqual(families.map((f) => `cuda_${f}`).sort());
  for (const c of list) {
    expect({ name: `${c.kernel} ${c.pass}`, work: (c.flops ?? 0) + (c.bytes ?? 0) > 0 }).toEqual({ name: `${c.kernel} ${c.pass}`, work: true });
    expect(c.peak).toEqual({ gflops: 989e3, gbps: 4.8e3 });
    expect(c.repeat).toBeGreaterThanOrEqual(1);
  }
  for (const kernel of ['cuda_attention', 'cuda_gemm', 'cuda_moe_combine']) {
    expect(list.filter((c) => c.kernel === kernel).map((c) => c.pass)).toEqual(expect.arrayContaining(['fwd', 'bwd']));
  }
  // Every case's arguments are valid: prepared and run on the emulator without an error (against a peak so low
  // that each case calls its kernel once).
  for (const c of cudaCaseList(backend.k, { gflops: 1e-6, gbps: 1e-6, source: 'test' }, tiny)) {
    expect(c.repeat).toBe(1);
    c.prepare()();
  }
});

// ---- training: a tiny MoE MiniMind on 'cpu' (f32) and on 'cuda' (bf16), from the same initialisation ----
// Tolerance as in test/cuda-train.test.ts (bf16 activations: under 2% of the loss over a few steps). The router
// sees bf16 gate logits on cuda, so a token whose top two probabilities are within bf16 rounding may pick another
// expert than on the CPU; with 64 tokens per step that moves the loss by far less than the tolerance.

const TINY_MOE = {
  dim: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, vocab_size: 128, max_seq_len: 32, hidden_dim: 128,
  use_moe: true, n_routed_experts: 4, num_experts_per_tok: 2, n_shared_experts: 1, aux_loss_alpha: 0.1,
  seq_aux: true, norm_topk_prob: true,
};
const TRAIN_B = 2;
const TRAIN_T = 16;
const STEPS = 4;
const LOSS_RTOL = 0.02;

function moeTrainLosses(device: 'cpu' | 'cuda'): number[] {
  const model = new MiniMind(resolveConfig(TINY_MOE), device);
  initWeights(model, 7);
  let state = 12345;
  const rand = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  try {
    return trainSteps(model.parameters(), { lr: 3e-3, weightDecay: 0.01 }, STEPS, () => {
      // A repeating pattern plus noise, so there is something to learn.
      const ids = Int32Array.from({ length: TRAIN_B * TRAIN_T + 1 }, (_, i) => 1 + ((i * 7 + Math.floor(rand() * 3)) % 127));
      const tokens = Tensor.from(ids.subarray(0, TRAIN_B * TRAIN_T), [TRAIN_B, TRAIN_T], 'i32', device);
      const targets = Tensor.from(ids.subarray(1), [TRAIN_B, TRAIN_T], 'i32', device);
      return model.loss(tokens, targets, null, true);
    }, null);
  } finally {
    model.dispose();
  }
}

test('a tiny MoE model (aux loss on) trains on cuda with losses that track the CPU run', () => {
  const cpu = moeTrainLosses('cpu');
  const cuda = moeTrainLosses('cuda');
  console.log(`MoE cpu  ${cpu.map((l) => l.toFixed(5)).join(' ')}\nMoE cuda ${cuda.map((l) => l.toFixed(5)).join(' ')}`);
  for (let step = 0; step < STEPS; step++) expect(Math.abs(cuda[step] - cpu[step])).toBeLessThan(LOSS_RTOL * cpu[step]);
  expect(cuda[STEPS - 1]).toBeLessThan(cuda[0]);
  expect(persistentBytes.cuda).toBe(0);
});
