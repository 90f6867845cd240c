import { backward } from '../lib/autograd/tape';
import { add, mul, reshape, scale } from '../lib/ops/elementwise';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

// Plain references in double precision.
const refAdd = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);
const refMul = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v * b[i]);

describe.each([1, 7, 4096 * 3 + 5, 1 << 17])('elementwise, n=%i', (n) => {
  const a = randn(n, 1);
  const b = randn(n, 2);
  const w = randn(n, 3);

  test('add and mul forward match the reference', () => {
    expectClose(add(Tensor.from(a, [n]), Tensor.from(b, [n])).toArray(), refAdd(a, b));
    expectClose(mul(Tensor.from(a, [n]), Tensor.from(b, [n])).toArray(), refMul(a, b));
    expectClose(scale(Tensor.from(a, [n]), -0.5).toArray(), Float64Array.from(a, (v) => -0.5 * v));
  });

  test('backward of L = w . (a*b + 2a) matches the analytic gradient', () => {
    const ta = leaf(a, [n]);
    const tb = leaf(b, [n]);
    const y = add(mul(ta, tb), scale(ta, 2));
    // Seed with w: the gradient of w.y
    backward(y, Tensor.from(w, [n]));
    expectClose(ta.grad!.toArray(), Float64Array.from(a, (_, i) => w[i] * (b[i] + 2)), 1e-5, 1e-5);
    expectClose(tb.grad!.toArray(), Float64Array.from(a, (v, i) => w[i] * v), 1e-5, 1e-5);
  });
});

test('reference backward agrees with finite differences', () => {
  const n = 9;
  const a = randn(n, 4);
  const b = randn(n, 5);
  const w = randn(n, 6);
  const f = (x: Float64Array) => dot(w, refAdd(refMul(x, b), x.map((v) => 2 * v)));
  const fd = finiteDiff(f, a);
  expectClose(Float64Array.from(a, (_, i) => w[i] * (b[i] + 2)), fd, 1e-6, 1e-6);
});

test('reshape passes gradients through and shares memory', () => {
  const ta = leaf(randn(12, 7), [3, 4]);
  const r = reshape(ta, [2, -1]);
  expect(r.shape).toEqual([2, 6]);
  expect(r.ptr).toBe(ta.ptr);
  backward(r, Tensor.from(new Float32Array(12).fill(1), [2, 6]));
  expectClose(ta.grad!.toArray(), new Float32Array(12).fill(1));
});

test('arena tensors are invalid after the step ends', () => {
  const t = Tensor.from([1, 2, 3], [3]);
  resetStepArenas();
  expect(() => t.toArray()).toThrow(/finished step/);
});
