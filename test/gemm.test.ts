// GEMM: the native kernel against a float64 reference (every micro-kernel path, transposes, batches, alpha /
// beta, awkward sizes, sizes that cross the cache blocks and the thread splits), then matmul / linear
// backward against the analytic formulas, and those formulas against central finite differences.
//
// Paths: cpu.gemmIsa(name) forces a micro-kernel in this process ('avx512', 'avx2', 'portable'; the ones
// this CPU lacks are skipped); a child process checks that MINIMIND_CPU=portable selects 'portable'.
import { execFileSync } from 'node:child_process';
import { backward } from '../lib/autograd/tape';
import { linear, matmul } from '../lib/ops/gemm';
import { addonPath, native } from '../lib/native';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

interface Case {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  batch: number;
}

/** C_b = alpha * op(A_b) @ op(B_b) + beta * C_b in float64, with each element's magnitude for the tolerance. */
function refGemm(c: Case, A: ArrayLike<number>, B: ArrayLike<number>, C0: ArrayLike<number>) {
  const { transA, transB, M, N, K, alpha, beta, batch } = c;
  const out = new Float64Array(batch * M * N);
  const mag = new Float64Array(batch * M * N);
  // op(A) row by row and op(B) column by column, each as a contiguous K-vector.
  const rowA = new Float64Array(K);
  const colsB = new Float64Array(N * K);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < N; j++)
      for (let k = 0; k < K; k++) colsB[j * K + k] = transB ? B[b * K * N + j * K + k] : B[b * K * N + k * N + j];
    for (let i = 0; i < M; i++) {
      for (let k = 0; k < K; k++) rowA[k] = transA ? A[b * M * K + k * M + i] : A[b * M * K + i * K + k];
      for (let j = 0; j < N; j++) {
        let acc = 0;
        let abs = 0;
        for (let k = 0, o = j * K; k < K; k++, o++) {
          const p = rowA[k] * colsB[o];
          acc += p;
          abs += p < 0 ? -p : p;  // (Math.abs is a slow call inside jest's sandbox)
        }
        const o = b * M * N + i * N + j;
        const old = beta === 0 ? 0 : beta * C0[o];
        out[o] = alpha * acc + old;
        mag[o] = Math.abs(alpha) * abs + Math.abs(old);
      }
    }
  }
  return { out, mag };
}

const supportedIsas = ['avx512', 'avx2', 'portable'].filter((isa) => {
  try {
    native.cpu.gemmIsa(isa);
    return true;
  } catch {
    return false;
  } finally {
    native.cpu.gemmIsa('auto');
  }
});

/** n uniform values in [-1, 1) from a seeded xorshift: plenty for GEMM inputs, and cheap for big ones. */
function uniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 2147483648 - 1;
  }
  return out;
}

/** Runs every supported micro-kernel on the same random inputs and compares each with the reference. */
function checkGemm(c: Case, seed: number): void {
  const { transA, transB, M, N, K, alpha, beta, batch } = c;
  const A = uniform(batch * M * K, seed);
  const B = uniform(batch * K * N, seed + 1);
  const C0 = uniform(batch * M * N, seed + 2);
  // beta = 0 must ignore C's old contents, NaN included.
  if (beta === 0) C0.fill(NaN);
  const { out, mag } = refGemm(c, A, B, C0);
  const tA = Tensor.from(A, [batch * M * K]);
  const tB = Tensor.from(B, [batch * K * N]);
  const tC = Tensor.empty([batch * M * N], 'f32', 'cpu', false);
  for (const isa of supportedIsas) {
    tC.upload(C0);
    native.cpu.gemmIsa(isa);
    try {
      native.cpu.gemm(transA, transB, M, N, K, alpha, tA.ptr, transA ? M : K, M * K, tB.ptr, transB ? K : N, K * N,
        beta, tC.ptr, N, M * N, batch);
    } finally {
      native.cpu.gemmIsa('auto');
    }
    const got = tC.toArray();
    // float32 rounding of a K-term sum: a few ulps of the sum of magnitudes.
    const ulps = 4e-7 * Math.log2(K + 2);
    for (let i = 0; i < out.length; i++) {
      const tol = ulps * (mag[i] + 1);
      const err = got[i] - out[i];
      if (!(err <= tol && -err <= tol)) {
        throw new Error(`gemm ${isa} ${JSON.stringify(c)}: element ${i} got ${got[i]}, expected ${out[i]} (tol ${tol})`);
      }
    }
  }
}

// [M, N, K]: tiny, odd, tile-sized, past the tiles, past the K block (384), the N block (256) and, for the
// row block (2296 rows with AVX-512), a tall thin one; the last ones are big enough to be split over
// threads by rows, by columns, and by depth.
const shapes: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [5, 1, 9], [3, 5, 1], [13, 17, 19], [14, 32, 16], [6, 16, 8], [15, 33, 31],
  [29, 65, 400], [31, 300, 37], [2400, 9, 5], [300, 200, 40], [30, 300, 300], [40, 50, 1000],
  // The matrix-vector kernel (M <= 4 with transB): four weight rows at a time and the remainder, the K % 16
  // tail, and enough rows to be split over threads.
  [4, 13, 70], [2, 600, 33],
];
// Cycled over the shapes so every transpose combination meets each of them several times.
const scalings: [number, number][] = [[1, 0], [-0.7, 1], [1, 1], [2.5, 0], [0.5, -0.5]];
const transposes: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

describe(`gemm kernel vs reference, paths: ${supportedIsas.join(', ')}`, () => {
  test.each(transposes)('every shape, transA=%p transB=%p, alpha / beta cycled', (transA, transB) => {
    shapes.forEach(([M, N, K], i) => {
      const [alpha, beta] = scalings[i % scalings.length];
      checkGemm({ transA, transB, M, N, K, alpha, beta, batch: 1 }, 10 * i + 1);
    });
  });

  test('batched (small items, items split over threads, items each split over threads)', () => {
    transposes.forEach(([transA, transB], i) => {
      checkGemm({ transA, transB, M: 7, N: 9, K: 11, alpha: 2, beta: 0.5, batch: 3 }, 100 + i);
      checkGemm({ transA, transB, M: 128, N: 128, K: 128, alpha: 1, beta: 0, batch: 2 }, 110 + i);
      checkGemm({ transA, transB, M: 128, N: 100, K: 160, alpha: 1, beta: 1, batch: 3 }, 120 + i);
    });
  });

  test('each forced path reports itself', () => {
    for (const isa of supportedIsas) {
      expect(native.cpu.gemmIsa(isa)).toBe(isa);
      native.cpu.gemmIsa('auto');
    }
  });
});

test('MINIMIND_CPU=portable selects the portable path', () => {
  const script = `process.stdout.write(require(${JSON.stringify(addonPath)}).cpu.gemmIsa())`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, MINIMIND_CPU: 'portable' } });
  expect(out.toString()).toBe('portable');
});

test('unknown paths are refused', () => {
  expect(() => native.cpu.gemmIsa('sse9')).toThrow(/sse9/);
  expect(native.cpu.gemmIsa()).toBe(supportedIsas[0]);
});

// ---- autograd ---------------------------------------------------------------------------------------------

/** Plain float64 product of row-major [M, K] @ [K, N] with optional transposed storage. */
function refMatmul(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number,
  transA = false, transB = false): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (transA ? a[k * M + i] : a[i * K + k]) * (transB ? b[j * K + k] : b[k * N + j]);
      out[i * N + j] = acc;
    }
  }
  return out;
}

/**
 * The analytic gradients of L = sum(G * op(A) @ op(B)) in the stored layouts: d op(A) = G @ op(B)ᵀ and
 * d op(B) = op(A)ᵀ @ G, transposed back when A or B is stored transposed.
 */
function refMatmulGrads(a: ArrayLike<number>, b: ArrayLike<number>, g: ArrayLike<number>, M: number, N: number,
  K: number, transA: boolean, transB: boolean): { dA: Float64Array; dB: Float64Array } {
  // op(B)ᵀ is N x K: stored B [K, N] read transposed, or stored [N, K] read as is.
  const dOpA = refMatmul(g, b, M, K, N, false, !transB);
  const dOpB = refMatmul(a, g, K, N, M, !transA, false);
  const transpose = (x: Float64Array, rows: number, cols: number) =>
    Float64Array.from(x, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]);
  return {
    dA: transA ? transpose(dOpA, M, K) : dOpA,
    dB: transB ? transpose(dOpB, K, N) : dOpB,
  };
}

describe.each(transposes)('matmul backward, transA=%p transB=%p', (transA, transB) => {
  const [M, N, K] = [5, 7, 9];

  test('2D gradients match the analytic formula, and accumulate', () => {
    const a = randn(M * K, 21);
    const b = randn(K * N, 22);
    const g = randn(M * N, 23);
    const ta = leaf(a, transA ? [K, M] : [M, K]);
    const tb = leaf(b, transB ? [N, K] : [K, N]);
    const y = matmul(ta, tb, { transA, transB });
    expect(y.shape).toEqual([M, N]);
    expectClose(y.toArray(), refMatmul(a, b, M, N, K, transA, transB), 1e-5, 1e-5);
    backward(y, Tensor.from(g, [M, N]));
    const { dA, dB } = refMatmulGrads(a, b, g, M, N, K, transA, transB);
    expectClose(ta.grad!.toArray(), dA, 1e-5, 1e-5, 'dA');
    expectClose(tb.grad!.toArray(), dB, 1e-5, 1e-5, 'dB');
    // A second backward adds to the same gradients (beta = 1).
    backward(matmul(ta, tb, { transA, transB }), Tensor.from(g, [M, N]));
    expectClose(ta.grad!.toArray(), dA.map((v) => 2 * v), 1e-5, 1e-5, 'dA twice');
    expectClose(tb.grad!.toArray(), dB.map((v) => 2 * v), 1e-5, 1e-5, 'dB twice');
  });

  test('3D batched gradients match the analytic formula per item', () => {
    const Bt = 3;
    const a = randn(Bt * M * K, 31);
    const b = randn(Bt * K * N, 32);
    const g = randn(Bt * M * N, 33);
    const ta = leaf(a, transA ? [Bt, K, M] : [Bt, M, K]);
    const tb = leaf(b, transB ? [Bt, N, K] : [Bt, K, N]);
    const y = matmul(ta, tb, { transA, transB });
    expect(y.shape).toEqual([Bt, M, N]);
    backward(y, Tensor.from(g, [Bt, M, N]));
    const gotA = ta.grad!.toArray();
    const gotB = tb.grad!.toArray();
    for (let i = 0; i < Bt; i++) {
      const item = (x: ArrayLike<number>, n: number) => Array.prototype.slice.call(x, i * n, (i + 1) * n) as number[];
      const ai = item(a, M * K);
      const bi = item(b, K * N);
      expectClose(item(y.toArray(), M * N), refMatmul(ai, bi, M, N, K, transA, transB), 1e-5, 1e-5, `y[${i}]`);
      const { dA, dB } = refMatmulGrads(ai, bi, item(g, M * N), M, N, K, transA, transB);
      expectClose(item(gotA, M * K), dA, 1e-5, 1e-5, `dA[${i}]`);
      expectClose(item(gotB, K * N), dB, 1e-5, 1e-5, `dB[${i}]`);
    }
  });

  test('the reference gradients agree with finite differences', () => {
    const a = randn(M * K, 41);
    const b = randn(K * N, 42);
    const g = randn(M * N, 43);
    const { dA, dB } = refMatmulGrads(a, b, g, M, N, K, transA, transB);
    expectClose(dA, finiteDiff((x) => dot(g, refMatmul(x, b, M, N, K, transA, transB)), a), 1e-6, 1e-6, 'dA');
    expectClose(dB, finiteDiff((x) => dot(g, refMatmul(a, x, M, N, K, transA, transB)), b), 1e-6, 1e-6, 'dB');
  });
});

describe('linear', () => {
  const [Bt, T, K, N] = [2, 3, 10, 6];
  const rows = Bt * T;

  test('forward is x @ wᵀ over any leading dims; backward is dx = dy @ w, dw = dyᵀ @ x, accumulated', () => {
    const x = randn(rows * K, 51);
    const w = randn(N * K, 52);
    const g = randn(rows * N, 53);
    const tx = leaf(x, [Bt, T, K]);
    const tw = Tensor.from(w, [N, K], 'f32', 'cpu', true);  // a parameter: persistent, grad persists
    tw.requiresGrad = true;
    try {
      const y = linear(tx, tw);
      expect(y.shape).toEqual([Bt, T, N]);
      expectClose(y.toArray(), refMatmul(x, w, rows, N, K, false, true), 1e-5, 1e-5, 'y');
      backward(y, Tensor.from(g, [Bt, T, N]));
      const dx = refMatmul(g, w, rows, K, N);
      const dw = refMatmul(g, x, N, K, rows, true, false);
      expectClose(tx.grad!.toArray(), dx, 1e-5, 1e-5, 'dx');
      expectClose(tw.grad!.toArray(), dw, 1e-5, 1e-5, 'dw');
      backward(linear(tx, tw), Tensor.from(g, [Bt, T, N]));
      expectClose(tw.grad!.toArray(), dw.map((v) => 2 * v), 1e-5, 1e-5, 'dw accumulated');
    } finally {
      tw.dispose();
    }
  });

  test('the reference gradients agree with finite differences', () => {
    const x = randn(rows * K, 61);
    const w = randn(N * K, 62);
    const g = randn(rows * N, 63);
    const f = (xx: ArrayLike<number>, ww: ArrayLike<number>) => dot(g, refMatmul(xx, ww, rows, N, K, false, true));
    expectClose(refMatmul(g, w, rows, K, N), finiteDiff((v) => f(v, w), x), 1e-6, 1e-6, 'dx');
    expectClose(refMatmul(g, x, N, K, rows, true, false), finiteDiff((v) => f(x, v), w), 1e-6, 1e-6, 'dw');
  });

  test('bad shapes are refused with the op and shapes named', () => {
    const x = Tensor.zeros([4, 5]);
    expect(() => linear(x, Tensor.zeros([3, 4]))).toThrow(/linear: .*\[4, 5\].*\[3, 4\]/);
    expect(() => matmul(x, Tensor.zeros([4, 3]))).toThrow(/matmul: inner sizes differ/);
    expect(() => matmul(x, Tensor.zeros([2, 5, 3]))).toThrow(/matmul: expected two 2D or two 3D/);
    expect(() => matmul(Tensor.zeros([2, 4, 5]), Tensor.zeros([3, 5, 3]))).toThrow(/batch sizes differ/);
  });
});
