import { backward } from '../lib/autograd/tape';
import { embedding } from '../lib/ops/embedding';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn, rng } from './helpers';

afterEach(() => resetStepArenas());

function randomIds(n: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * V));
}

// Plain references: the lookup, and the gradient sum over positions in double precision.
function refEmbedding(ids: ArrayLike<number>, w: ArrayLike<number>, C: number): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let i = 0; i < ids.length; i++) for (let j = 0; j < C; j++) out[i * C + j] = w[ids[i] * C + j];
  return out;
}
function refEmbeddingBackward(ids: ArrayLike<number>, dout: ArrayLike<number>, V: number, C: number): Float64Array {
  const dw = new Float64Array(V * C);
  for (let i = 0; i < ids.length; i++) for (let j = 0; j < C; j++) dw[ids[i] * C + j] += dout[i * C + j];
  return dw;
}

test('reference backward agrees with finite differences', () => {
  const ids = [2, 0, 2];
  const w = randn(3 * 2, 1);
  const dout = randn(ids.length * 2, 2);
  const fd = finiteDiff((ww) => dot(dout, refEmbedding(ids, ww, 2)), w);
  expectClose(refEmbeddingBackward(ids, dout, 3, 2), fd, 1e-7, 1e-6);
});

describe.each([
  [1, 1, 1],
  [5, 3, 7], // repeated ids, odd C
  [64, 17, 33],
  [300, 6400, 9], // MiniMind's vocabulary
])('embedding n=%i V=%i C=%i', (n, V, C) => {
  const ids = randomIds(n, V, n + V);
  const w = randn(V * C, 2);
  const dout = randn(n * C, 3);

  test('lookup is exact; the gradient sums every use of a row', () => {
    const tw = leaf(w, [V, C]);
    const out = embedding(Tensor.from(ids, [n], 'i32'), tw);
    expect(out.shape).toEqual([n, C]);
    expect(Array.from(out.toArray())).toEqual(Array.from(refEmbedding(ids, Float32Array.from(w), C)));
    backward(out, Tensor.from(dout, [n, C]));
    expectClose(tw.grad!.toArray(), refEmbeddingBackward(ids, dout, V, C), 1e-6, 1e-5, 'dweight');
  });
});

test('ids of any shape give [...ids.shape, C]; gradients accumulate (tied weights)', () => {
  const V = 10;
  const C = 4;
  const ids = Int32Array.from([3, 3, 9, 0, 3, 1]);
  const w = randn(V * C, 4);
  const dout = randn(ids.length * C, 5);
  const tw = leaf(w, [V, C]);
  for (let i = 0; i < 2; i++) {
    const out = embedding(Tensor.from(ids, [2, 3], 'i32'), tw);
    expect(out.shape).toEqual([2, 3, C]);
    backward(out, Tensor.from(dout, [2, 3, C]));
  }
  expectClose(tw.grad!.toArray(), refEmbeddingBackward(ids, dout, V, C).map((v) => 2 * v), 1e-6, 1e-5);
});

test('the gradient is bit-identical across runs, with heavily repeated ids', () => {
  const V = 50;
  const C = 40;
  const n = 2000;
  const ids = randomIds(n, V, 6);
  const dout = randn(n * C, 7);
  const run = () => {
    const tw = leaf(new Float32Array(V * C), [V, C]);
    backward(embedding(Tensor.from(ids, [n], 'i32'), tw), Tensor.from(dout, [n, C]));
    return Buffer.from(tw.grad!.toArray().buffer);
  };
  expect(run().equals(run())).toBe(true);
});

test('an id outside the vocabulary throws a clear error', () => {
  const w = Tensor.zeros([8, 2]);
  expect(() => embedding(Tensor.from([1, 2, 8], [3], 'i32'), w)).toThrow('embedding: ids[2] = 8 is outside the vocabulary [0, 8)');
  expect(() => embedding(Tensor.from([-1], [1], 'i32'), w)).toThrow(/ids\[0\] = -1/);
  expect(() => embedding(Tensor.from([1], [1], 'f32'), w)).toThrow(/embedding: expected i32/);
});
