// MoE routing ops vs plain float64 references: the router (softmax, top-k, renormalisation, stable sort by
// expert), MiniMind's aux loss in both modes, dispatch and combine, their gradients vs central finite
// differences, and a composed route -> dispatch -> per-expert linear map -> combine check against the dense
// per-token formula y[t] = sum_slot w[t,slot] * W_{e(t,slot)} x[t].
import { backward, gradOf, record } from '../lib/autograd/tape';
import { MoeRouting, moeAuxLoss, moeCombine, moeDispatch, moeRoute } from '../lib/ops/moe';
import { native } from '../lib/native';
import { Tensor } from '../lib/tensor/tensor';
import { resetStepArenas } from '../lib/tensor/memory';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

// ---- float64 references -------------------------------------------------------------------------------

interface RefRouting {
  scores: Float64Array; // [N, E]
  weights: Float64Array; // [N, k]
  experts: Int32Array; // [N*k]
}

/** Softmax, top-k (descending, ties to the lower id), MiniMind's renormalisation (only when k > 1). */
function refRoute(logits: ArrayLike<number>, N: number, E: number, k: number, normTopk: boolean): RefRouting {
  const scores = new Float64Array(N * E);
  const weights = new Float64Array(N * k);
  const experts = new Int32Array(N * k);
  for (let t = 0; t < N; t++) {
    const row = Array.from({ length: E }, (_, e) => logits[t * E + e]);
    const max = Math.max(...row);
    const ex = row.map((v) => Math.exp(v - max));
    const sum = ex.reduce((a, b) => a + b, 0);
    for (let e = 0; e < E; e++) scores[t * E + e] = ex[e] / sum;
    const ranked = [...Array(E).keys()].sort((a, b) => scores[t * E + b] - scores[t * E + a] || a - b);
    const top = ranked.slice(0, k);
    const denom = normTopk && k > 1 ? top.reduce((s, e) => s + scores[t * E + e], 0) + 1e-20 : 1;
    top.forEach((e, j) => {
      experts[t * k + j] = e;
      weights[t * k + j] = scores[t * E + e] / denom;
    });
  }
  return { scores, weights, experts };
}

/** MiniMind's aux loss written from the spec's formulas (§1.9). */
function refAux(scores: ArrayLike<number>, experts: Int32Array, B: number, T: number, E: number, k: number,
  alpha: number, seqAux: boolean): number {
  if (seqAux) {
    let total = 0;
    for (let b = 0; b < B; b++) {
      for (let e = 0; e < E; e++) {
        let count = 0;
        for (let i = 0; i < T * k; i++) if (experts[b * T * k + i] === e) count++;
        const ce = count / ((T * k) / E);
        let P = 0;
        for (let s = 0; s < T; s++) P += scores[(b * T + s) * E + e] / T;
        total += ce * P;
      }
    }
    return (alpha * total) / B;
  }
  const N = B * T;
  let total = 0;
  for (let e = 0; e < E; e++) {
    let count = 0;
    for (let i = 0; i < N * k; i++) if (experts[i] === e) count++;
    const f = E * (count / (N * k));
    let P = 0;
    for (let n = 0; n < N; n++) P += scores[n * E + e] / N;
    total += f * P;
  }
  return alpha * total;
}

/** The assignment a = t*k + slot -> its row in expert-sorted order (stable: tokens ascend within an expert). */
function refPositions(experts: Int32Array, E: number): Int32Array {
  const positions = new Int32Array(experts.length);
  let p = 0;
  for (let e = 0; e < E; e++) {
    for (let a = 0; a < experts.length; a++) if (experts[a] === e) positions[a] = p++;
  }
  return positions;
}

function refDispatch(x: ArrayLike<number>, experts: Int32Array, E: number, k: number, C: number): Float64Array {
  const positions = refPositions(experts, E);
  const out = new Float64Array(experts.length * C);
  for (let a = 0; a < experts.length; a++) {
    for (let c = 0; c < C; c++) out[positions[a] * C + c] = x[Math.floor(a / k) * C + c];
  }
  return out;
}

function refCombine(expertOut: ArrayLike<number>, weights: ArrayLike<number>, experts: Int32Array, E: number,
  k: number, C: number): Float64Array {
  const positions = refPositions(experts, E);
  const N = experts.length / k;
  const y = new Float64Array(N * C);
  for (let a = 0; a < N * k; a++) {
    const t = Math.floor(a / k);
    for (let c = 0; c < C; c++) y[t * C + c] += weights[a] * expertOut[positions[a] * C + c];
  }
  return y;
}

const logitsOf = (N: number, E: number, seed: number) => randn(N * E, seed, 1.5);

// ---- router ------------------------------------------------------------------------------------------

describe.each([
  [37, 4, 2, true],
  [37, 4, 2, false],
  [37, 8, 1, true],
  [1, 8, 2, true],
  [1001, 8, 2, false],
  [65, 64, 8, true],
])('moeRoute N=%i E=%i k=%i normTopk=%s', (N, E, k, normTopk) => {
  const logits = logitsOf(N, E, N + E + k);

  test('scores, weights and experts match the reference', () => {
    const r = moeRoute(Tensor.from(logits, [N, E]), k, normTopk);
    const ref = refRoute(logits, N, E, k, normTopk);
    expectClose(r.scores.toArray(), ref.scores, 1e-6, 1e-5, 'scores');
    expectClose(r.weights.toArray(), ref.weights, 1e-6, 1e-5, 'weights');
    expect(Array.from(r.experts)).toEqual(Array.from(ref.experts));
  });

  test('counts, offsets and order form a stable sort by expert', () => {
    const r = moeRoute(Tensor.from(logits, [N, E]), k, normTopk);
    const histogram = new Array(E).fill(0);
    for (const e of r.experts) histogram[e]++;
    expect(r.counts).toEqual(histogram);
    expect(r.offsets.length).toBe(E + 1);
    expect(r.offsets[0]).toBe(0);
    for (let e = 0; e < E; e++) expect(r.offsets[e + 1]).toBe(r.offsets[e] + r.counts[e]);
    expect(r.offsets[E]).toBe(N * k);
    expect(Array.from(r.order)).toEqual(Array.from(refPositions(r.experts, E)).map((_, i, pos) => pos.indexOf(i)));
    for (let e = 0; e < E; e++) {
      for (let p = r.offsets[e]; p < r.offsets[e + 1]; p++) {
        expect(r.experts[r.order[p]]).toBe(e);
        if (p > r.offsets[e]) expect(r.order[p]).toBeGreaterThan(r.order[p - 1]);
      }
    }
    const positions = r.positionTensor.toArray();
    for (let p = 0; p < N * k; p++) expect(positions[r.order[p]]).toBe(p);
  });
});

test('top-k ties pick the lower expert id', () => {
  const logits = [1, 1, 1, 1, /**/ 0, 2, 2, 1, /**/ 3, 0, 3, 3];
  const r = moeRoute(Tensor.from(logits, [3, 4]), 2, true);
  expect(Array.from(r.experts)).toEqual([0, 1, 1, 2, 0, 2]);
  expectClose(r.weights.toArray(), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
});

test('norm_topk_prob does not apply at k=1 (MiniMind: only when top_k > 1)', () => {
  const logits = logitsOf(5, 4, 3);
  const r = moeRoute(Tensor.from(logits, [5, 4]), 1, true);
  const scores = r.scores.toArray();
  const w = r.weights.toArray();
  for (let t = 0; t < 5; t++) expect(w[t]).toBe(scores[t * 4 + r.experts[t]]);
});

test('bad arguments give clear errors', () => {
  expect(() => moeRoute(Tensor.from(logitsOf(3, 4, 1), [3, 4]), 5, true)).toThrow(/topK=5/);
  expect(() => moeRoute(Tensor.from(logitsOf(3, 4, 1), [12]), 2, true)).toThrow(/\[N, E\]/);
  const r = moeRoute(Tensor.from(logitsOf(3, 4, 1), [3, 4]), 2, true);
  expect(() => moeAuxLoss(r, 2, 2, 0.01, true)).toThrow(/must equal/);
  expect(() => moeDispatch(Tensor.zeros([4, 8]), r)).toThrow(/moeDispatch/);
  expect(() => moeCombine(Tensor.zeros([3, 8]), r)).toThrow(/moeCombine/);
});

describe.each([
  [7, 4, 2, true],
  [7, 4, 2, false],
  [9, 8, 1, true],
])('moeRoute backward N=%i E=%i k=%i normTopk=%s', (N, E, k, normTopk) => {
  test('d(gw.weights + gs.scores)/dlogits matches finite differences', () => {
    const logits = logitsOf(N, E, 11 * N + E);
    const gw = randn(N * k, 12);
    const gs = randn(N * E, 13);
    const z = leaf(logits, [N, E]);
    const r = moeRoute(z, k, normTopk);
    gradOf(r.scores).upload(gs); // a second output gradient, read by the router's backward with the seed below
    backward(r.weights, Tensor.from(gw, [N, k]));
    const f = (zz: Float64Array) => {
      const ref = refRoute(zz, N, E, k, normTopk);
      return dot(gw, ref.weights) + dot(gs, ref.scores);
    };
    expectClose(z.grad!.toArray(), finiteDiff(f, logits), 1e-5, 1e-4);
  });
});

// ---- aux loss ----------------------------------------------------------------------------------------

describe.each([
  [3, 5, 4, 2, true],
  [3, 5, 4, 2, false],
  [2, 7, 8, 1, true],
  [1, 9, 8, 2, false],
])('moeAuxLoss B=%i T=%i E=%i k=%i seqAux=%s', (B, T, E, k, seqAux) => {
  const N = B * T;
  const alpha = 0.01;
  const logits = logitsOf(N, E, 7 * B + T);

  test('value matches the spec formula', () => {
    const r = moeRoute(Tensor.from(logits, [N, E]), k, true);
    const ref = refRoute(logits, N, E, k, true);
    const aux = moeAuxLoss(r, B, T, alpha, seqAux);
    expect(aux.shape).toEqual([]);
    expectClose([aux.item()], [refAux(ref.scores, ref.experts, B, T, E, k, alpha, seqAux)], 1e-9, 1e-5);
  });

  test('gradient (into scores, then logits) matches finite differences', () => {
    const z = leaf(logits, [N, E]);
    const r = moeRoute(z, k, true);
    r.scores.retainGrad = true;
    backward(moeAuxLoss(r, B, T, alpha, seqAux));
    // d aux / d scores, with the selection counts held constant (as in MiniMind).
    const experts = r.experts;
    const scores = r.scores.toArray();
    const fScores = (s: Float64Array) => refAux(s, experts, B, T, E, k, alpha, seqAux);
    expectClose(r.scores.grad!.toArray(), finiteDiff(fScores, scores), 1e-8, 1e-4, 'dscores');
    const fLogits = (zz: Float64Array) => {
      const ref = refRoute(zz, N, E, k, true);
      return refAux(ref.scores, ref.experts, B, T, E, k, alpha, seqAux);
    };
    expectClose(z.grad!.toArray(), finiteDiff(fLogits, logits), 1e-8, 1e-4, 'dlogits');
  });
});

test('aux loss equals alpha for uniform scores, whatever the selection', () => {
  const r = moeRoute(Tensor.zeros([12, 4]), 2, true);
  expectClose([moeAuxLoss(r, 3, 4, 0.01, true).item()], [0.01], 1e-9, 1e-6);
  expectClose([moeAuxLoss(r, 3, 4, 0.01, false).item()], [0.01], 1e-9, 1e-6);
});

// ---- dispatch and combine ------------------------------------------------------------------------------

describe.each([
  [37, 4, 2, 19],
  [37, 8, 1, 37],
  [1, 4, 2, 512],
  [513, 8, 2, 64],
])('dispatch/combine N=%i E=%i k=%i C=%i', (N, E, k, C) => {
  const logits = logitsOf(N, E, N + C);
  const x = randn(N * C, 21);
  const expertOut = randn(N * k * C, 22);

  test('forward matches the reference', () => {
    const r = moeRoute(Tensor.from(logits, [N, E]), k, true);
    const weights = r.weights.toArray();
    expectClose(moeDispatch(Tensor.from(x, [N, C]), r).toArray(), refDispatch(x, r.experts, E, k, C), 0, 0);
    expectClose(moeCombine(Tensor.from(expertOut, [N * k, C]), r).toArray(),
      refCombine(expertOut, weights, r.experts, E, k, C), 1e-6, 1e-5);
  });

  test('backward matches the reference backward', () => {
    const r = moeRoute(leaf(logits, [N, E]), k, true);
    const tx = leaf(x, [N, C]);
    const teo = leaf(expertOut, [N * k, C]);
    const gDispatch = randn(N * k * C, 23);
    const gCombine = randn(N * C, 24);
    backward(moeDispatch(tx, r), Tensor.from(gDispatch, [N * k, C]));
    backward(moeCombine(teo, r), Tensor.from(gCombine, [N, C]));
    // Reference backward: dx[t] = sum of the rows of its assignments; d expertOut[pos(a)] = w[a] * dy[t];
    // d w[a] = dy[t] . expertOut[pos(a)].
    const positions = refPositions(r.experts, E);
    const weights = r.weights.toArray();
    const dx = new Float64Array(N * C);
    const deo = new Float64Array(N * k * C);
    const dw = new Float64Array(N * k);
    for (let a = 0; a < N * k; a++) {
      const t = Math.floor(a / k);
      for (let c = 0; c < C; c++) {
        dx[t * C + c] += gDispatch[positions[a] * C + c];
        deo[positions[a] * C + c] = weights[a] * gCombine[t * C + c];
        dw[a] += gCombine[t * C + c] * expertOut[positions[a] * C + c];
      }
    }
    expectClose(tx.grad!.toArray(), dx, 1e-5, 1e-5, 'dx');
    expectClose(teo.grad!.toArray(), deo, 1e-6, 1e-5, 'dexpertOut');
    expectClose(r.weights.grad!.toArray(), dw, 1e-4, 1e-4, 'dweights');
  });
});

test('the reference dispatch/combine backward agrees with finite differences', () => {
  const [N, E, k, C] = [5, 4, 2, 3];
  const logits = logitsOf(N, E, 31);
  const x = randn(N * C, 32);
  const expertOut = randn(N * k * C, 33);
  const g = randn(N * k * C, 34);
  const gy = randn(N * C, 35);
  const r = moeRoute(leaf(logits, [N, E]), k, true);
  const tx = leaf(x, [N, C]);
  const teo = leaf(expertOut, [N * k, C]);
  backward(moeDispatch(tx, r), Tensor.from(g, [N * k, C]));
  backward(moeCombine(teo, r), Tensor.from(gy, [N, C]));
  const weights = Float64Array.from(r.weights.toArray());
  expectClose(tx.grad!.toArray(), finiteDiff((xx) => dot(g, refDispatch(xx, r.experts, E, k, C)), x), 1e-6, 1e-5);
  expectClose(teo.grad!.toArray(),
    finiteDiff((eo) => dot(gy, refCombine(eo, weights, r.experts, E, k, C)), expertOut), 1e-6, 1e-5);
  expectClose(r.weights.grad!.toArray(),
    finiteDiff((w) => dot(gy, refCombine(expertOut, w, r.experts, E, k, C)), weights), 1e-5, 1e-4);
});

// ---- composed: route -> dispatch -> per-expert linear map -> combine ---------------------------------------

/** Applies expert e's matrix W[e] ([Cin, Cout]) to its rows of the dispatched buffer, with a recorded backward. */
function expertLinear(dispatched: Tensor, routing: MoeRouting, W: Float32Array, Cin: number, Cout: number): Tensor {
  const rows = dispatched.toArray();
  const out = new Float32Array(rows.length / Cin * Cout);
  const expertOfRow = (p: number) => routing.offsets.findIndex((end, e) => e > 0 && p < end) - 1;
  const apply = (p: number, c: number, o: number) => W[((expertOfRow(p) * Cin) + c) * Cout + o];
  for (let p = 0; p < rows.length / Cin; p++) {
    for (let o = 0; o < Cout; o++) {
      let s = 0;
      for (let c = 0; c < Cin; c++) s += rows[p * Cin + c] * apply(p, c, o);
      out[p * Cout + o] = s;
    }
  }
  const y = Tensor.from(out, [rows.length / Cin, Cout]);
  record(y, () => {
    const dy = y.grad!.toArray();
    const dIn = Float32Array.from(gradOf(dispatched).toArray());
    for (let p = 0; p < rows.length / Cin; p++) {
      for (let c = 0; c < Cin; c++) {
        for (let o = 0; o < Cout; o++) dIn[p * Cin + c] += dy[p * Cout + o] * apply(p, c, o);
      }
    }
    gradOf(dispatched).upload(dIn);
  });
  return y;
}

/** The dense formula: y[t] = sum_slot w[t,slot] * (x[t] @ W[e(t,slot)]). */
function refMoeDense(x: ArrayLike<number>, logits: ArrayLike<number>, W: Float32Array, N: number, E: number,
  k: number, Cin: number, Cout: number): Float64Array {
  const ref = refRoute(logits, N, E, k, true);
  const y = new Float64Array(N * Cout);
  for (let t = 0; t < N; t++) {
    for (let j = 0; j < k; j++) {
      const e = ref.experts[t * k + j];
      for (let o = 0; o < Cout; o++) {
        let s = 0;
        for (let c = 0; c < Cin; c++) s += x[t * Cin + c] * W[(e * Cin + c) * Cout + o];
        y[t * Cout + o] += ref.weights[t * k + j] * s;
      }
    }
  }
  return y;
}

test.each([
  [7, 4, 2],
  [9, 8, 1],
])('route -> dispatch -> experts -> combine equals the dense formula (N=%i E=%i k=%i)', (N, E, k) => {
  const [Cin, Cout] = [5, 3];
  const x = randn(N * Cin, 41);
  const logits = logitsOf(N, E, 42);
  const W = randn(E * Cin * Cout, 43, 0.5);
  const gy = randn(N * Cout, 44);
  const tx = leaf(x, [N, Cin]);
  const z = leaf(logits, [N, E]);
  const routing = moeRoute(z, k, true);
  const y = moeCombine(expertLinear(moeDispatch(tx, routing), routing, W, Cin, Cout), routing);
  expectClose(y.toArray(), refMoeDense(x, logits, W, N, E, k, Cin, Cout), 1e-5, 1e-5, 'y');
  backward(y, Tensor.from(gy, [N, Cout]));
  const fx = (xx: Float64Array) => dot(gy, refMoeDense(xx, logits, W, N, E, k, Cin, Cout));
  const fz = (zz: Float64Array) => dot(gy, refMoeDense(x, zz, W, N, E, k, Cin, Cout));
  expectClose(tx.grad!.toArray(), finiteDiff(fx, x), 1e-5, 1e-4, 'dx');
  expectClose(z.grad!.toArray(), finiteDiff(fz, logits), 1e-5, 1e-4, 'dlogits');
});

test('results are bitwise identical with 1 and 2 threads (no atomics, fixed summation order)', () => {
  const [N, E, k, C] = [513, 8, 2, 64];
  const logits = logitsOf(N, E, 51);
  const x = randn(N * C, 52);
  const gy = randn(N * C, 53);
  const run = (threads: number) => {
    const before = native.cpu.threads();
    native.cpu.setThreads(threads);
    try {
      const z = leaf(logits, [N, E]);
      const tx = leaf(x, [N, C]);
      const r = moeRoute(z, k, true);
      const y = moeCombine(moeDispatch(tx, r), r);
      backward(y, Tensor.from(gy, [N, C]));
      return [y.toArray(), tx.grad!.toArray(), z.grad!.toArray()];
    } finally {
      native.cpu.setThreads(before);
    }
  };
  const [one, two] = [run(1), run(2)];
  for (let i = 0; i < one.length; i++) expect(Buffer.from(two[i].buffer).equals(Buffer.from(one[i].buffer))).toBe(true);
});
