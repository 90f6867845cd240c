import * as fs from 'node:fs';
import * as path from 'node:path';
import { backward } from '../lib/autograd/tape';
import { crossEntropy, tokenLogProbs, tokenLosses } from '../lib/ops/loss';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn, rng } from './helpers';

afterEach(() => resetStepArenas());

// Plain references in double precision over logits [N, V].
function refLse(logits: ArrayLike<number>, V: number): Float64Array {
  const N = logits.length / V;
  const lse = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[i * V + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[i * V + j] - m);
    lse[i] = m + Math.log(s);
  }
  return lse;
}

/** Per-token weights: the mask (or 1), 0 for ignored targets. */
const refWeights = (targets: ArrayLike<number>, ignore: number, mask?: ArrayLike<number>) =>
  Float64Array.from(targets, (t, i) => (t === ignore ? 0 : mask ? mask[i] : 1));

function refCrossEntropy(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number, w: Float64Array): number {
  const lse = refLse(logits, V);
  let num = 0;
  let den = 0;
  for (let i = 0; i < targets.length; i++) {
    if (w[i] === 0) continue;
    num += w[i] * (lse[i] - logits[i * V + targets[i]]);
    den += w[i];
  }
  return den === 0 ? 0 : num / den;
}

/** d(dloss * crossEntropy)/d logits = (softmax - onehot) * w_i * dloss / sum w. */
function refCrossEntropyGrad(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number, w: Float64Array,
  dloss = 1): Float64Array {
  const lse = refLse(logits, V);
  const sumW = w.reduce((a, b) => a + b, 0);
  const g = new Float64Array(logits.length);
  for (let i = 0; i < targets.length; i++) {
    if (w[i] === 0) continue;
    const c = (w[i] * dloss) / sumW;
    for (let j = 0; j < V; j++) g[i * V + j] = (Math.exp(logits[i * V + j] - lse[i]) - (j === targets[i] ? 1 : 0)) * c;
  }
  return g;
}

const refTokenLogProbs = (logits: ArrayLike<number>, targets: ArrayLike<number>, V: number) =>
  Float64Array.from(refLse(logits, V), (l, i) => logits[i * V + targets[i]] - l);

/** d(seed . logp)/d logits_i = seed_i * (onehot - softmax). */
function refTokenLogProbsGrad(logits: ArrayLike<number>, targets: ArrayLike<number>, V: number,
  seed: ArrayLike<number>): Float64Array {
  const lse = refLse(logits, V);
  const g = new Float64Array(logits.length);
  for (let i = 0; i < targets.length; i++) {
    for (let j = 0; j < V; j++) g[i * V + j] = seed[i] * ((j === targets[i] ? 1 : 0) - Math.exp(logits[i * V + j] - lse[i]));
  }
  return g;
}

function randomTargets(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, () => Math.floor(r() * V));
}

test('reference gradients agree with finite differences', () => {
  const N = 3;
  const V = 5;
  const logits = randn(N * V, 1, 2);
  const targets = Int32Array.from([0, 4, 2]);
  const mask = [1, 0.5, 2];
  const w = refWeights(targets, -100, mask);
  const fd = finiteDiff((x) => refCrossEntropy(x, targets, V, w), logits);
  expectClose(refCrossEntropyGrad(logits, targets, V, w), fd, 1e-7, 1e-5, 'crossEntropy');
  const seed = randn(N, 2);
  const fdLogp = finiteDiff((x) => dot(seed, refTokenLogProbs(x, targets, V)), logits);
  expectClose(refTokenLogProbsGrad(logits, targets, V, seed), fdLogp, 1e-7, 1e-5, 'tokenLogProbs');
});

describe.each([
  [1, 7],
  [5, 33],
  [64, 100],
  [3, 6400], // MiniMind's vocabulary
  [40, 1001], // several row chunks across threads
])('crossEntropy N=%i V=%i', (N, V) => {
  const logits = randn(N * V, N + V, 3);
  const targets = randomTargets(N, V, 7);

  test('plain mean: forward, in-place backward', () => {
    const w = refWeights(targets, -100);
    const tl = leaf(logits, [N, V]);
    const loss = crossEntropy(tl, Tensor.from(targets, [N], 'i32'));
    expect(loss.size).toBe(1);
    expectClose([loss.item()], [refCrossEntropy(logits, targets, V, w)], 1e-6, 1e-6, 'loss');
    backward(loss);
    expect(tl.grad!.ptr).toBe(tl.ptr); // the gradient lives in the logits' memory
    expectClose(tl.grad!.toArray(), refCrossEntropyGrad(logits, targets, V, w), 1e-7, 1e-4, 'dlogits');
  });

  test('ignore index, mask and a seed gradient; accumulation into an existing gradient', () => {
    const ignore = targets[0];
    const mask = Float32Array.from({ length: N }, (_, i) => (i % 3) * 0.5);
    const w = refWeights(targets, ignore, mask);
    const tl = leaf(logits, [N, V]);
    const prior = randn(N * V, 9);
    tl.grad = Tensor.from(prior, [N, V]);
    const loss = crossEntropy(tl, Tensor.from(targets, [N], 'i32'), { ignoreIndex: ignore, mask: Tensor.from(mask, [N]) });
    expectClose([loss.item()], [refCrossEntropy(logits, targets, V, w)], 1e-6, 1e-6, 'loss');
    backward(loss, Tensor.from([2.5], []));
    const ref = refCrossEntropyGrad(logits, targets, V, w, 2.5).map((v, i) => v + prior[i]);
    expectClose(tl.grad!.toArray(), ref, 1e-6, 1e-4, 'dlogits');
    expectClose(tl.toArray(), logits, 0, 0, 'logits untouched when accumulating');
  });

  test('tokenLogProbs and tokenLosses', () => {
    const refLogp = refTokenLogProbs(logits, targets, V);
    const tl = leaf(logits, [N, V]);
    const logp = tokenLogProbs(tl, Tensor.from(targets, [N], 'i32'));
    expectClose(logp.toArray(), refLogp, 1e-5, 1e-5, 'logp');
    expectClose(tokenLosses(tl, Tensor.from(targets, [N], 'i32')), refLogp.map((v) => -v), 1e-5, 1e-5, 'losses');
    const seed = randn(N, 11);
    backward(logp, Tensor.from(seed, [N]));
    expectClose(tl.grad!.toArray(), refTokenLogProbsGrad(logits, targets, V, seed), 1e-6, 1e-4, 'dlogits');
    expectClose(tl.toArray(), logits, 0, 0, 'logits untouched');
  });
});

test('every target ignored: loss 0 and a zero gradient', () => {
  const tl = leaf(randn(12, 1), [3, 4]);
  const loss = crossEntropy(tl, Tensor.from([0, 0, 0], [3], 'i32'), { ignoreIndex: 0 });
  expect(loss.item()).toBe(0);
  backward(loss);
  expect(Array.from(tl.grad!.toArray())).toEqual(new Array(12).fill(0));
});

test('extreme logits stay finite', () => {
  const V = 40;
  const logits = Float32Array.from({ length: 2 * V }, (_, j) => (j < V ? (j % 2 ? 80 : -80) : j === V ? 1e4 : -1e4));
  const targets = Int32Array.from([0, 1]);
  const w = refWeights(targets, -100);
  const tl = leaf(logits, [2, V]);
  const loss = crossEntropy(tl, Tensor.from(targets, [2], 'i32'));
  expectClose([loss.item()], [refCrossEntropy(logits, targets, V, w)], 1e-3, 1e-6, 'loss');
  backward(loss);
  expectClose(tl.grad!.toArray(), refCrossEntropyGrad(logits, targets, V, w), 1e-6, 1e-4, 'dlogits');
});

test('the gradient is bit-identical across runs', () => {
  const N = 48;
  const V = 999;
  const logits = randn(N * V, 12, 4);
  const targets = randomTargets(N, V, 13);
  const run = () => {
    const tl = leaf(logits, [N, V]);
    backward(crossEntropy(tl, Tensor.from(targets, [N], 'i32')));
    return Buffer.from(tl.grad!.toArray().buffer);
  };
  expect(run().equals(run())).toBe(true);
});

test('bad targets and shapes give clear errors', () => {
  const logits = Tensor.zeros([2, 5]);
  expect(() => crossEntropy(logits, Tensor.from([1, 5], [2], 'i32'))).toThrow(
    'crossEntropy: targets[1] = 5 is outside the vocabulary [0, 5)');
  expect(() => crossEntropy(logits, Tensor.from([1, -100], [2], 'i32'))).not.toThrow();
  expect(() => tokenLogProbs(logits, Tensor.from([-1, 0], [2], 'i32'))).toThrow(/tokenLogProbs: targets\[0\] = -1/);
  expect(() => crossEntropy(logits, Tensor.from([1], [1], 'i32'))).toThrow(/crossEntropy: expected/);
  expect(() => crossEntropy(logits, Tensor.from([1, 2], [2], 'i32'), { mask: Tensor.zeros([3]) })).toThrow(/crossEntropy/);
});

// MiniMind v1's own per-token losses (upstream model.py on a tiny dense config; logits rounded to 6 decimals).
const GOLDEN = path.join(__dirname, '../../shared/fixtures/minimind/golden_v1_tiny_forward.json');
test('matches upstream MiniMind per-token losses (golden fixture)', () => {
  const dense = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')).dense as {
    input_tokens: number[];
    logits: number[][];
    loss_per_token_ignore_index0: number[];
  };
  const expected = dense.loss_per_token_ignore_index0;
  const N = expected.length; // logits at positions 0..N-1 predict tokens 1..N
  const V = dense.logits[0].length;
  const logits = Tensor.from(dense.logits.slice(0, N).flat(), [N, V]);
  const targets = Tensor.from(dense.input_tokens.slice(1, N + 1), [N], 'i32');
  expectClose(tokenLosses(logits, targets), expected, 2e-5, 0, 'per-token loss');
  const mean = expected.reduce((a, b) => a + b, 0) / N;
  expectClose([crossEntropy(logits, targets, { ignoreIndex: 0 }).item()], [mean], 2e-5, 0, 'mean loss');
});
