// Flash-style attention (lib/ops/attention.ts) against a plain float64 reference that materialises the softmax,
// on every vector path this CPU has; the reference backward against central finite differences.
import { backward } from '../lib/autograd/tape';
import { native } from '../lib/native';
import { attention, VectorIsa } from '../lib/ops/attention';
import { kernels } from '../lib/ops/kernels';
import { resetStepArenas } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

interface Case {
  B: number;
  T: number;
  Tk: number;
  NH: number;
  NKV: number;
  HD: number;
  causal: boolean;
}

// ---- reference (float64, materialised probabilities) --------------------------------------------------

/** Probabilities p[b][h][i] over keys 0..Tk-1 (0 for masked keys). */
function refProbs(c: Case, q: ArrayLike<number>, k: ArrayLike<number>): Float64Array[][][] {
  const { B, T, Tk, NH, NKV, HD } = c;
  const scale = 1 / Math.sqrt(HD);
  const probs: Float64Array[][][] = [];
  for (let b = 0; b < B; b++) {
    probs.push([]);
    for (let h = 0; h < NH; h++) {
      probs[b].push([]);
      const kvh = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++) {
        const last = c.causal ? Tk - T + i : Tk - 1;
        const p = new Float64Array(Tk);
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          let s = 0;
          for (let d = 0; d < HD; d++) s += q[((b * T + i) * NH + h) * HD + d] * k[((b * Tk + j) * NKV + kvh) * HD + d];
          p[j] = s * scale;
          max = Math.max(max, p[j]);
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += p[j] = Math.exp(p[j] - max);
        for (let j = 0; j <= last; j++) p[j] /= sum;
        probs[b][h].push(p);
      }
    }
  }
  return probs;
}

function refForward(c: Case, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  const { B, T, Tk, NH, NKV, HD } = c;
  const probs = refProbs(c, q, k);
  const out = new Float64Array(B * T * NH * HD);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++)
        for (let j = 0; j < Tk; j++) {
          const p = probs[b][h][i][j];
          if (p === 0) continue;
          for (let d = 0; d < HD; d++) out[((b * T + i) * NH + h) * HD + d] += p * v[((b * Tk + j) * NKV + kvh) * HD + d];
        }
    }
  return out;
}

/** Analytic gradients of sum(dout * attention(q, k, v)). */
function refBackward(c: Case, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  dout: ArrayLike<number>): [Float64Array, Float64Array, Float64Array] {
  const { B, T, Tk, NH, NKV, HD } = c;
  const scale = 1 / Math.sqrt(HD);
  const probs = refProbs(c, q, k);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++) {
        const qi = ((b * T + i) * NH + h) * HD;
        const p = probs[b][h][i];
        const dp = new Float64Array(Tk);
        let D = 0;
        for (let j = 0; j < Tk; j++) {
          if (p[j] === 0) continue;
          const kj = ((b * Tk + j) * NKV + kvh) * HD;
          for (let d = 0; d < HD; d++) {
            dp[j] += dout[qi + d] * v[kj + d];
            dv[kj + d] += p[j] * dout[qi + d];
          }
          D += p[j] * dp[j];
        }
        for (let j = 0; j < Tk; j++) {
          if (p[j] === 0) continue;
          const kj = ((b * Tk + j) * NKV + kvh) * HD;
          const ds = p[j] * (dp[j] - D) * scale;
          for (let d = 0; d < HD; d++) {
            dq[qi + d] += ds * k[kj + d];
            dk[kj + d] += ds * q[qi + d];
          }
        }
      }
    }
  return [dq, dk, dv];
}

// ---- fast vs reference ------------------------------------------------------------------------------------

const info = native.cpu.cpuInfo();
const isas: VectorIsa[] = ['portable', ...(info.avx2 && info.fma ? ['avx2' as const] : []),
  ...(info.avx512f ? ['avx512' as const] : [])];

const cases: Case[] = [
  { B: 1, T: 1, Tk: 1, NH: 1, NKV: 1, HD: 32, causal: true }, // one token
  { B: 2, T: 5, Tk: 5, NH: 4, NKV: 2, HD: 32, causal: true }, // odd T, GQA 2
  { B: 1, T: 50, Tk: 50, NH: 4, NKV: 1, HD: 48, causal: true }, // GQA 4, two query tiles, ragged key tile
  { B: 2, T: 97, Tk: 97, NH: 2, NKV: 2, HD: 64, causal: true }, // GQA 1, three tiles
  { B: 1, T: 3, Tk: 70, NH: 4, NKV: 2, HD: 32, causal: true }, // prefill after a KV cache: Tk > T
  { B: 1, T: 1, Tk: 130, NH: 2, NKV: 1, HD: 64, causal: true }, // one decode step
  { B: 1, T: 37, Tk: 61, NH: 2, NKV: 1, HD: 32, causal: false }, // no mask, Tk != T
  { B: 1, T: 20, Tk: 20, NH: 2, NKV: 1, HD: 128, causal: true }, // largest head dim
  { B: 1, T: 9, Tk: 9, NH: 3, NKV: 3, HD: 80, causal: true }, // an odd number of 16-float vectors
];

const name = (c: Case) => `B=${c.B} T=${c.T} Tk=${c.Tk} NH=${c.NH} NKV=${c.NKV} HD=${c.HD}${c.causal ? '' : ' non-causal'}`;

describe.each(cases.map((c) => [name(c), c] as const))('attention %s', (_, c) => {
  const qShape = [c.B, c.T, c.NH, c.HD], kvShape = [c.B, c.Tk, c.NKV, c.HD];
  const q = randn(c.B * c.T * c.NH * c.HD, 11);
  const k = randn(c.B * c.Tk * c.NKV * c.HD, 12);
  const v = randn(c.B * c.Tk * c.NKV * c.HD, 13);
  const dout = randn(q.length, 14);
  const ref = refForward(c, q, k, v);
  const [dqRef, dkRef, dvRef] = refBackward(c, q, k, v, dout);

  test.each(isas)('forward and backward match the reference (%s)', (isa) => {
    const tq = leaf(q, qShape), tk = leaf(k, kvShape), tv = leaf(v, kvShape);
    const out = attention(tq, tk, tv, { causal: c.causal, isa });
    expectClose(out.toArray(), ref, 2e-5, 1e-4, 'out');
    backward(out, Tensor.from(dout, qShape));
    expectClose(tq.grad!.toArray(), dqRef, 5e-5, 1e-4, 'dq');
    expectClose(tk.grad!.toArray(), dkRef, 5e-5, 1e-4, 'dk');
    expectClose(tv.grad!.toArray(), dvRef, 5e-5, 1e-4, 'dv');
  });
});

test('backward accumulates into existing gradients and is deterministic', () => {
  const c: Case = { B: 2, T: 60, Tk: 60, NH: 4, NKV: 2, HD: 32, causal: true };
  const qShape = [c.B, c.T, c.NH, c.HD], kvShape = [c.B, c.Tk, c.NKV, c.HD];
  const q = randn(c.B * c.T * c.NH * c.HD, 21), k = randn(c.B * c.Tk * c.NKV * c.HD, 22);
  const v = randn(k.length, 23), dout = randn(q.length, 24);
  const grads = () => {
    const tq = leaf(q, qShape), tk = leaf(k, kvShape), tv = leaf(v, kvShape);
    tk.grad = Tensor.from(new Float32Array(k.length).fill(1), kvShape);
    backward(attention(tq, tk, tv), Tensor.from(dout, qShape));
    return [tq.grad!.toArray(), tk.grad!.toArray(), tv.grad!.toArray()];
  };
  const first = grads(), second = grads();
  for (let i = 0; i < 3; i++) expect(Buffer.from(second[i].buffer).equals(Buffer.from(first[i].buffer))).toBe(true);
  const [, dkRef] = refBackward(c, q, k, v, dout);
  expectClose(first[1], dkRef.map((g) => g + 1), 5e-5, 1e-4, 'dk + 1');
});

test('results are bitwise identical for any thread count (tasks split KV heads by query tiles when few)', () => {
  // 1 thread: one task per (batch, KV head); 2 and 8 threads: 2 and 5 tasks each, taking every 2nd / 5th tile.
  const c: Case = { B: 1, T: 300, Tk: 300, NH: 4, NKV: 2, HD: 32, causal: true };
  const qShape = [c.B, c.T, c.NH, c.HD], kvShape = [c.B, c.Tk, c.NKV, c.HD];
  const q = randn(c.T * c.NH * c.HD, 61), k = randn(c.Tk * c.NKV * c.HD, 62);
  const v = randn(k.length, 63), dout = randn(q.length, 64);
  const run = (threads: number) => {
    const before = native.cpu.threads();
    native.cpu.setThreads(threads);
    try {
      const tq = leaf(q, qShape), tk = leaf(k, kvShape), tv = leaf(v, kvShape);
      const out = attention(tq, tk, tv);
      backward(out, Tensor.from(dout, qShape));
      return [out.toArray(), tq.grad!.toArray(), tk.grad!.toArray(), tv.grad!.toArray()];
    } finally {
      native.cpu.setThreads(before);
    }
  };
  const [one, two, eight] = [run(1), run(2), run(8)];
  for (let i = 0; i < one.length; i++) {
    expect(Buffer.from(two[i].buffer).equals(Buffer.from(one[i].buffer))).toBe(true);
    expect(Buffer.from(eight[i].buffer).equals(Buffer.from(one[i].buffer))).toBe(true);
  }
  expectClose(eight[0], refForward(c, q, k, v), 2e-5, 1e-4, 'out');
});

test('the lse of the forward is the log-sum-exp of the scaled scores of each query (every vector path)', () => {
  // Large scores spread the sums over many magnitudes; T = 70 gives a padded second query tile.
  const c: Case = { B: 1, T: 70, Tk: 70, NH: 2, NKV: 1, HD: 32, causal: true };
  const q = randn(c.T * c.NH * c.HD, 71, 3), k = randn(c.Tk * c.HD, 72, 3), v = randn(c.Tk * c.HD, 73);
  const scale = 1 / Math.sqrt(c.HD);
  const ref: number[] = [];
  for (let h = 0; h < c.NH; h++)
    for (let i = 0; i < c.T; i++) {
      const qi = q.subarray((i * c.NH + h) * c.HD, (i * c.NH + h + 1) * c.HD);
      const scores = Array.from({ length: i + 1 }, (_, j) => scale * dot(qi, k.subarray(j * c.HD, (j + 1) * c.HD)));
      const max = Math.max(...scores);
      ref.push(max + Math.log(scores.reduce((sum, x) => sum + Math.exp(x - max), 0)));
    }
  const kern = kernels<Record<string, (...args: unknown[]) => void>>('cpu');
  const tq = Tensor.from(q, [1, c.T, c.NH, c.HD]), tk = Tensor.from(k, [1, c.Tk, 1, c.HD]);
  const tv = Tensor.from(v, [1, c.Tk, 1, c.HD]);
  for (const isa of [1, 2, 3].slice(0, isas.length)) { // portable, avx2, avx512: the paths this CPU has
    const out = Tensor.zeros([1, c.T, c.NH, c.HD]), lse = Tensor.zeros([1, c.NH, c.T]);
    kern.attentionForward(out.ptr, lse.ptr, tq.ptr, tk.ptr, tv.ptr, c.B, c.T, c.Tk, c.NH, c.NKV, c.HD, true, isa);
    expectClose(lse.toArray(), Float64Array.from(ref), 2e-5, 1e-6, `lse (isa ${isa})`);
  }
});

test('a long sequence stays exact (online softmax over many key tiles)', () => {
  const c: Case = { B: 1, T: 700, Tk: 700, NH: 1, NKV: 1, HD: 32, causal: true };
  // Large scores make the running max move a lot between tiles.
  const q = randn(c.T * c.HD, 31, 3), k = randn(c.T * c.HD, 32, 3), v = randn(c.T * c.HD, 33);
  const out = attention(Tensor.from(q, [1, c.T, 1, c.HD]), Tensor.from(k, [1, c.T, 1, c.HD]),
    Tensor.from(v, [1, c.T, 1, c.HD]));
  expectClose(out.toArray(), refForward(c, q, k, v), 5e-5, 1e-4, 'out');
});

test('reference backward agrees with central finite differences', () => {
  const c: Case = { B: 1, T: 3, Tk: 4, NH: 2, NKV: 1, HD: 4, causal: true };
  const q = Float64Array.from(randn(c.T * c.NH * c.HD, 41)), k = Float64Array.from(randn(c.Tk * c.HD, 42));
  const v = Float64Array.from(randn(c.Tk * c.HD, 43)), w = randn(q.length, 44);
  const [dq, dk, dv] = refBackward(c, q, k, v, w);
  expectClose(dq, finiteDiff((x) => dot(w, refForward(c, x, k, v)), q), 1e-7, 1e-6, 'dq');
  expectClose(dk, finiteDiff((x) => dot(w, refForward(c, q, x, v)), k), 1e-7, 1e-6, 'dk');
  expectClose(dv, finiteDiff((x) => dot(w, refForward(c, q, k, x)), v), 1e-7, 1e-6, 'dv');
});

test('bad shapes get clear errors', () => {
  const t = (shape: number[]) => Tensor.zeros(shape);
  expect(() => attention(t([1, 4, 3, 32]), t([1, 4, 2, 32]), t([1, 4, 2, 32]))).toThrow(/NH=3 is not a multiple of NKV=2/);
  expect(() => attention(t([1, 4, 2, 24]), t([1, 4, 2, 24]), t([1, 4, 2, 24]))).toThrow(/head dim 24/);
  expect(() => attention(t([1, 4, 2, 32]), t([1, 3, 2, 32]), t([1, 3, 2, 32]))).toThrow(/Tk >= T/);
  expect(() => attention(t([1, 4, 2, 32]), t([1, 4, 2, 32]), t([1, 5, 2, 32]))).toThrow(/k and v differ/);
});
