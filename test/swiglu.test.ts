import { backward } from '../lib/autograd/tape';
import { swiglu } from '../lib/ops/swiglu';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

// Plain references in double precision.
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const refSwiglu = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v * sigmoid(v) * b[i]);
function refSwigluBackward(a: ArrayLike<number>, b: ArrayLike<number>, dout: ArrayLike<number>) {
  const da = Float64Array.from(a, (v, i) => {
    const s = sigmoid(v);
    return dout[i] * b[i] * s * (1 + v * (1 - s));
  });
  const db = Float64Array.from(a, (v, i) => dout[i] * v * sigmoid(v));
  return { da, db };
}

test('reference backward agrees with finite differences', () => {
  const a = randn(11, 1, 3);
  const b = randn(11, 2);
  const w = randn(11, 3);
  const { da, db } = refSwigluBackward(a, b, w);
  expectClose(da, finiteDiff((x) => dot(w, refSwiglu(x, b)), a), 1e-6, 1e-5, 'da');
  expectClose(db, finiteDiff((x) => dot(w, refSwiglu(a, x)), b), 1e-6, 1e-5, 'db');
});

describe.each([
  [1, 1],
  [1, 15],
  [3, 17],
  [7, 1408],
  [33, 2051], // several chunks, a ragged tail
])('swiglu N=%i F=%i', (N, F) => {
  const n = N * F;
  const a = randn(n, 11, 4);
  const b = randn(n, 12);
  const dout = randn(n, 13);

  test('forward and fused backward match the reference', () => {
    const ta = leaf(a, [N, F]);
    const tb = leaf(b, [N, F]);
    const y = swiglu(ta, tb);
    expectClose(y.toArray(), refSwiglu(a, b), 1e-6, 1e-5, 'out');
    backward(y, Tensor.from(dout, [N, F]));
    const ref = refSwigluBackward(a, b, dout);
    expectClose(ta.grad!.toArray(), ref.da, 1e-6, 1e-5, 'da');
    expectClose(tb.grad!.toArray(), ref.db, 1e-6, 1e-5, 'db');
  });

  test('gradients accumulate into existing ones', () => {
    const ta = leaf(a, [N, F]);
    const tb = leaf(b, [N, F]);
    for (let i = 0; i < 2; i++) backward(swiglu(ta, tb), Tensor.from(dout, [N, F]));
    const ref = refSwigluBackward(a, b, dout);
    expectClose(ta.grad!.toArray(), ref.da.map((v) => 2 * v), 1e-6, 1e-5, 'da');
    expectClose(tb.grad!.toArray(), ref.db.map((v) => 2 * v), 1e-6, 1e-5, 'db');
  });
});

test('extreme gate values saturate cleanly', () => {
  const a = [-1000, -100, -88, -30, -1e-3, 0, 1e-3, 30, 88, 100, 1000, -20, 20, 5, -5, 0.5, -0.5];
  const b = a.map((_, i) => 1 + i / 10);
  const ta = leaf(a, [a.length]);
  const tb = leaf(b, [a.length]);
  const y = swiglu(ta, tb);
  expectClose(y.toArray(), refSwiglu(a, b), 1e-6, 1e-6, 'out');
  backward(y, Tensor.from(new Float32Array(a.length).fill(1), [a.length]));
  const ref = refSwigluBackward(a, b, new Float32Array(a.length).fill(1));
  expectClose(ta.grad!.toArray(), ref.da, 1e-6, 1e-5, 'da');
  expectClose(tb.grad!.toArray(), ref.db, 1e-6, 1e-5, 'db');
});

test('only one input requiring a gradient', () => {
  const a = randn(40, 5);
  const b = randn(40, 6);
  const dout = randn(40, 7);
  const tb = leaf(b, [40]);
  backward(swiglu(Tensor.from(a, [40]), tb), Tensor.from(dout, [40]));
  expectClose(tb.grad!.toArray(), refSwigluBackward(a, b, dout).db, 1e-6, 1e-5, 'db');
});

test('mismatched shapes throw', () => {
  expect(() => swiglu(Tensor.zeros([2, 3]), Tensor.zeros([3, 2]))).toThrow(/swiglu: expected/);
});

test('the same tensor as both inputs gets both gradients', () => {
  const a = randn(37, 8);
  const dout = randn(37, 9);
  const ta = leaf(a, [37]);
  backward(swiglu(ta, ta), Tensor.from(dout, [37]));
  const ref = refSwigluBackward(a, a, dout);
  expectClose(ta.grad!.toArray(), ref.da.map((v, i) => v + ref.db[i]), 1e-6, 1e-5);
});
