import { backward } from '../lib/autograd/tape';
import { add, mul } from '../lib/ops/elementwise';
import { addRmsnorm, rmsnorm } from '../lib/ops/norm';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

const EPS = 1e-5;

// Plain references in double precision: x [rows, C], w [C].
function refRmsnorm(x: ArrayLike<number>, w: ArrayLike<number>, C: number, eps = EPS): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let ss = 0;
    for (let j = 0; j < C; j++) ss += x[r * C + j] ** 2;
    const rstd = 1 / Math.sqrt(ss / C + eps);
    for (let j = 0; j < C; j++) y[r * C + j] = x[r * C + j] * rstd * w[j];
  }
  return y;
}

/** dx and dw of L = sum(dy * rmsnorm(x) * w). */
function refRmsnormBackward(x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, C: number, eps = EPS) {
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(C);
  for (let r = 0; r < x.length / C; r++) {
    let ss = 0;
    for (let j = 0; j < C; j++) ss += x[r * C + j] ** 2;
    const rstd = 1 / Math.sqrt(ss / C + eps);
    let dot = 0;
    for (let j = 0; j < C; j++) dot += dy[r * C + j] * w[j] * x[r * C + j] * rstd;
    for (let j = 0; j < C; j++) {
      const n = x[r * C + j] * rstd;
      dx[r * C + j] = rstd * (dy[r * C + j] * w[j] - (n * dot) / C);
      dw[j] += dy[r * C + j] * n;
    }
  }
  return { dx, dw };
}

test('reference backward agrees with finite differences', () => {
  const rows = 3;
  const C = 5;
  const x = randn(rows * C, 1);
  const w = randn(C, 2);
  const dy = randn(rows * C, 3);
  const { dx, dw } = refRmsnormBackward(x, w, dy, C);
  expectClose(dx, finiteDiff((xx) => dot(dy, refRmsnorm(xx, w, C)), x), 1e-6, 1e-5, 'dx');
  expectClose(dw, finiteDiff((ww) => dot(dy, refRmsnorm(x, ww, C)), w), 1e-6, 1e-5, 'dw');
});

describe.each([
  [1, 1],
  [1, 7],
  [3, 33],
  [5, 512],
  [300, 129], // several threads' worth of rows
  [64, 768],
])('rmsnorm rows=%i C=%i', (rows, C) => {
  const x = randn(rows * C, 11, 2);
  const w = randn(C, 12);
  const dy = randn(rows * C, 13);

  test('forward and backward match the reference', () => {
    const tx = leaf(x, [rows, C]);
    const tw = leaf(w, [C]);
    const y = rmsnorm(tx, tw, EPS);
    expectClose(y.toArray(), refRmsnorm(x, w, C), 1e-5, 1e-5, 'y');
    backward(y, Tensor.from(dy, [rows, C]));
    const ref = refRmsnormBackward(x, w, dy, C);
    expectClose(tx.grad!.toArray(), ref.dx, 1e-5, 1e-4, 'dx');
    expectClose(tw.grad!.toArray(), ref.dw, 1e-4, 1e-4, 'dw');
  });

  test('gradients accumulate across two backward passes', () => {
    const tx = leaf(x, [rows, C]);
    const tw = leaf(w, [C]);
    for (let i = 0; i < 2; i++) backward(rmsnorm(tx, tw, EPS), Tensor.from(dy, [rows, C]));
    const ref = refRmsnormBackward(x, w, dy, C);
    expectClose(tx.grad!.toArray(), ref.dx.map((v) => 2 * v), 1e-5, 1e-4, 'dx');
    expectClose(tw.grad!.toArray(), ref.dw.map((v) => 2 * v), 1e-4, 1e-4, 'dw');
  });
});

test('rmsnorm over a 3-D input normalises the last dimension', () => {
  const x = randn(2 * 3 * 8, 4);
  const w = randn(8, 5);
  const y = rmsnorm(Tensor.from(x, [2, 3, 8]), Tensor.from(w, [8]), 1e-6);
  expect(y.shape).toEqual([2, 3, 8]);
  expectClose(y.toArray(), refRmsnorm(x, w, 8, 1e-6), 1e-5, 1e-5);
});

test('the weight gradient is bit-identical across runs (rows split across threads)', () => {
  const rows = 600;
  const C = 96;
  const x = randn(rows * C, 21);
  const dy = randn(rows * C, 22);
  const run = () => {
    const tw = leaf(randn(C, 23), [C]);
    backward(rmsnorm(Tensor.from(x, [rows, C]), tw, EPS), Tensor.from(dy, [rows, C]));
    return tw.grad!.toArray();
  };
  expect(Buffer.from(run().buffer).equals(Buffer.from(run().buffer))).toBe(true);
});

describe.each([
  [1, 9],
  [7, 64],
  [200, 131],
])('addRmsnorm rows=%i C=%i', (rows, C) => {
  const r = randn(rows * C, 31);
  const x = randn(rows * C, 32);
  const w = randn(C, 33);
  const c = randn(rows * C, 34);
  const seed = randn(rows * C, 35);
  const h = Float64Array.from(r, (v, i) => v + x[i]);

  test('equals residual add then rmsnorm, forward and backward', () => {
    const tr = leaf(r, [rows, C]);
    const tx = leaf(x, [rows, C]);
    const tw = leaf(w, [C]);
    const { sum, normed } = addRmsnorm(tr, tx, tw, EPS);
    expectClose(sum.toArray(), h, 1e-6, 1e-6, 'sum');
    expectClose(normed.toArray(), refRmsnorm(h, w, C), 1e-5, 1e-5, 'normed');
    // L = seed . (c * sum + normed): dsum = seed * c reaches both inputs besides the norm's backward.
    backward(add(mul(sum, Tensor.from(c, [rows, C])), normed), Tensor.from(seed, [rows, C]));
    const ref = refRmsnormBackward(h, w, seed, C);
    const dh = ref.dx.map((v, i) => v + seed[i] * c[i]);
    expectClose(tr.grad!.toArray(), dh, 1e-5, 1e-4, 'dresidual');
    expectClose(tx.grad!.toArray(), dh, 1e-5, 1e-4, 'dx');
    expectClose(tw.grad!.toArray(), ref.dw, 1e-4, 1e-4, 'dw');
  });

  test('only the norm output used: residual and x get the norm gradient', () => {
    const tr = leaf(r, [rows, C]);
    const tx = leaf(x, [rows, C]);
    backward(addRmsnorm(tr, tx, Tensor.from(w, [C]), EPS).normed, Tensor.from(seed, [rows, C]));
    const ref = refRmsnormBackward(h, w, seed, C);
    expectClose(tr.grad!.toArray(), ref.dx, 1e-5, 1e-4, 'dresidual');
    expectClose(tx.grad!.toArray(), ref.dx, 1e-5, 1e-4, 'dx');
  });
});

test('bad arguments give clear errors', () => {
  expect(() => rmsnorm(Tensor.zeros([2, 4]), Tensor.zeros([5]), EPS)).toThrow(/rmsnorm: the last dimension/);
  expect(() => addRmsnorm(Tensor.zeros([3, 4]), Tensor.zeros([2, 4]), Tensor.zeros([4]), EPS)).toThrow(/addRmsnorm/);
});

test('addRmsnorm(h, h): the same tensor as residual and x gets both gradients', () => {
  const C = 24;
  const x = randn(3 * C, 41);
  const w = randn(C, 42);
  const seed = randn(3 * C, 43);
  const tx = leaf(x, [3, C]);
  backward(addRmsnorm(tx, tx, Tensor.from(w, [C]), EPS).normed, Tensor.from(seed, [3, C]));
  const ref = refRmsnormBackward(x.map((v) => 2 * v), w, seed, C);
  expectClose(tx.grad!.toArray(), ref.dx.map((v) => 2 * v), 1e-5, 1e-4);
});
