// CUDA kernels (native/cuda/kernels/) against plain double-precision references. They run on the emulated
// device under forward, reverse and random fiber orders with poisoned shared memory, and on the GPU under
// `npm run test:gpu`. Inputs are rounded to bf16 before the reference sees them, so tolerances only cover the
// kernels' own bf16 output rounding (relative 2^-8) and fp32 accumulation.
import { dot, expectClose, finiteDiff, randn } from './helpers';
import { describeEachBackend, roundBf16 } from './cuda-helpers';

// bf16 keeps 8 significant bits: one rounding of the output is a relative error of at most 2^-9.
const BF16_RTOL = 1 / 128;

// ---- references ----

/** h = bf16(x + r); y = h * rstd * w. Returns h (as stored), y and rstd. */
function refRmsnorm(x: Float64Array, r: Float64Array | null, w: Float64Array, N: number, C: number, eps: number) {
  const h = roundBf16(x.map((v, i) => v + (r ? r[i] : 0)));
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += h[n * C + c] ** 2;
    rstd[n] = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) y[n * C + c] = h[n * C + c] * rstd[n] * w[c];
  }
  return { h, y, rstd };
}

/** dL/dh and dL/dw of y = rmsnorm(h) * w, given dy. */
function refRmsnormBackward(dy: Float64Array, h: Float64Array, w: Float64Array, N: number, C: number, eps: number) {
  const dh = new Float64Array(N * C);
  const dw = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    let dotv = 0;
    for (let c = 0; c < C; c++) {
      ss += h[n * C + c] ** 2;
      dotv += dy[n * C + c] * w[c] * h[n * C + c];
    }
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) {
      dh[n * C + c] = r * dy[n * C + c] * w[c] - ((r * r * r) / C) * h[n * C + c] * dotv;
      dw[c] += dy[n * C + c] * h[n * C + c] * r;
    }
  }
  return { dh, dw };
}


const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function refSwiglu(g: Float64Array, u: Float64Array) {
  return g.map((x, i) => x * sigmoid(x) * u[i]);
}
function refSwigluBackward(dout: Float64Array, g: Float64Array, u: Float64Array) {
  const dg = g.map((x, i) => dout[i] * u[i] * sigmoid(x) * (1 + x * (1 - sigmoid(x))));
  const du = g.map((x, i) => dout[i] * x * sigmoid(x));
  return { dg, du };
}

/** cos/sin tables [maxT, HD/2] for angles p * base^(-2i/HD). */
function ropeTables(maxT: number, HD: number, base = 1e6) {
  const half = HD / 2;
  const cos = new Float32Array(maxT * half);
  const sin = new Float32Array(maxT * half);
  for (let p = 0; p < maxT; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / HD);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
/** Rotates every pair of x [B, T, NH, HD] (transposed rotation when `backward`). */
function refRope(x: Float64Array, cos: Float32Array, sin: Float32Array, B: number, T: number, NH: number, HD: number, pos0: number, interleaved: boolean, backward: boolean) {
  const half = HD / 2;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < NH; h++) {
        const base = ((b * T + t) * NH + h) * HD;
        for (let i = 0; i < half; i++) {
          const ia = base + (interleaved ? 2 * i : i);
          const ib = base + (interleaved ? 2 * i + 1 : i + half);
          const c = cos[(pos0 + t) * half + i];
          const s = (backward ? -1 : 1) * sin[(pos0 + t) * half + i];
          out[ia] = x[ia] * c - x[ib] * s;
          out[ib] = x[ia] * s + x[ib] * c;
        }
      }
  return out;
}

/** Per-row losses and gradients (softmax - onehot) * dloss; targets < 0 ignored. */
function refCrossEntropy(logits: Float64Array, targets: Int32Array, N: number, V: number, dloss: number) {
  const losses = new Float64Array(N);
  const grad = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const row = logits.subarray(n * V, (n + 1) * V);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    losses[n] = lse - row[targets[n]];
    for (let v = 0; v < V; v++) grad[n * V + v] = (Math.exp(row[v] - lse) - (v === targets[n] ? 1 : 0)) * dloss;
  }
  return { losses, grad };
}

interface AdamState { master: Float64Array; m: Float64Array; v: Float64Array }
const ADAM = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradScale: 0.5 };
function refAdamwStep(s: AdamState, grad: Float64Array, step: number) {
  const { lr, beta1, beta2, eps, weightDecay, gradScale } = ADAM;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let i = 0; i < grad.length; i++) {
    const g = grad[i] * gradScale;
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * g;
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * g * g;
    s.master[i] = s.master[i] * (1 - lr * weightDecay) - (lr * (s.m[i] / bc1)) / (Math.sqrt(s.v[i] / bc2) + eps);
  }
}


/** Row-major batched C = alpha op(A) op(B) + beta C in double precision (the CPU sgemm contract). */
function refGemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: Float64Array, B: Float64Array, beta: number, C: Float64Array, batch: number) {
  const out = Float64Array.from(C);
  for (let b = 0; b < batch; b++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const a = transA ? A[b * M * K + k * M + i] : A[b * M * K + i * K + k];
          const bb = transB ? B[b * K * N + j * K + k] : B[b * K * N + k * N + j];
          acc += a * bb;
        }
        const idx = b * M * N + i * N + j;
        out[idx] = alpha * acc + (beta === 0 ? 0 : beta * C[idx]);
      }
  return out;
}


interface AttnShape { B: number; T: number; NH: number; NKV: number; HD: number; scale: number }
const qIdx = (s: AttnShape, b: number, t: number, h: number, d: number) => ((b * s.T + t) * s.NH + h) * s.HD + d;
const kvIdx = (s: AttnShape, b: number, t: number, g: number, d: number) => ((b * s.T + t) * s.NKV + g) * s.HD + d;

/** Causal softmax attention with grouped KV heads; returns out and the per-row probabilities P[b][h][t][s]. */
function refAttention(s: AttnShape, q: Float64Array, k: Float64Array, v: Float64Array) {
  const out = new Float64Array(q.length);
  const lse = new Float64Array(s.B * s.NH * s.T);
  const P: number[][] = [];
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.NH; h++) {
      const g = Math.floor(h / (s.NH / s.NKV));
      for (let t = 0; t < s.T; t++) {
        const scores: number[] = [];
        for (let key = 0; key <= t; key++) {
          let dotv = 0;
          for (let d = 0; d < s.HD; d++) dotv += q[qIdx(s, b, t, h, d)] * k[kvIdx(s, b, key, g, d)];
          scores.push(dotv * s.scale);
        }
        const max = Math.max(...scores);
        const sum = scores.reduce((acc, x) => acc + Math.exp(x - max), 0);
        const p = scores.map((x) => Math.exp(x - max) / sum);
        lse[(b * s.NH + h) * s.T + t] = max + Math.log(sum);
        P[(b * s.NH + h) * s.T + t] = p;
        for (let key = 0; key <= t; key++)
          for (let d = 0; d < s.HD; d++) out[qIdx(s, b, t, h, d)] += p[key] * v[kvIdx(s, b, key, g, d)];
      }
    }
  return { out, lse, P };
}

function refAttentionBackward(s: AttnShape, q: Float64Array, k: Float64Array, v: Float64Array, dout: Float64Array) {
  const { out, P } = refAttention(s, q, k, v);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.NH; h++) {
      const g = Math.floor(h / (s.NH / s.NKV));
      for (let t = 0; t < s.T; t++) {
        const p = P[(b * s.NH + h) * s.T + t];
        let D = 0;
        for (let d = 0; d < s.HD; d++) D += dout[qIdx(s, b, t, h, d)] * out[qIdx(s, b, t, h, d)];
        for (let key = 0; key <= t; key++) {
          let dp = 0;
          for (let d = 0; d < s.HD; d++) dp += dout[qIdx(s, b, t, h, d)] * v[kvIdx(s, b, key, g, d)];
          const ds = p[key] * (dp - D);
          for (let d = 0; d < s.HD; d++) {
            dq[qIdx(s, b, t, h, d)] += s.scale * ds * k[kvIdx(s, b, key, g, d)];
            dk[kvIdx(s, b, key, g, d)] += s.scale * ds * q[qIdx(s, b, t, h, d)];
            dv[kvIdx(s, b, key, g, d)] += p[key] * dout[qIdx(s, b, t, h, d)];
          }
        }
      }
    }
  return { dq, dk, dv };
}

// ---- reference backward vs finite differences (plain JS, no device) ----

test('rmsnorm reference backward agrees with finite differences', () => {
  const N = 3, C = 5, eps = 1e-5;
  const h = Float64Array.from(randn(N * C, 11));
  const w = Float64Array.from(randn(C, 12));
  const dy = Float64Array.from(randn(N * C, 13));
  const { dh, dw } = refRmsnormBackward(dy, h, w, N, C, eps);
  const yOf = (hh: Float64Array, ww: Float64Array) => {
    const out = new Float64Array(N * C);
    for (let n = 0; n < N; n++) {
      let ss = 0;
      for (let c = 0; c < C; c++) ss += hh[n * C + c] ** 2;
      for (let c = 0; c < C; c++) out[n * C + c] = (hh[n * C + c] / Math.sqrt(ss / C + eps)) * ww[c];
    }
    return out;
  };
  expectClose(dh, finiteDiff((hh) => dot(dy, yOf(hh, w)), h), 1e-6, 1e-5, 'dh');
  expectClose(dw, finiteDiff((ww) => dot(dy, yOf(h, ww)), w), 1e-6, 1e-5, 'dw');
});


test('swiglu, rope and cross-entropy reference backwards agree with finite differences', () => {
  const n = 7;
  const g = Float64Array.from(randn(n, 31));
  const u = Float64Array.from(randn(n, 32));
  const dout = Float64Array.from(randn(n, 33));
  const { dg, du } = refSwigluBackward(dout, g, u);
  expectClose(dg, finiteDiff((x) => dot(dout, refSwiglu(x, u)), g), 1e-6, 1e-5, 'dgate');
  expectClose(du, finiteDiff((x) => dot(dout, refSwiglu(g, x)), u), 1e-6, 1e-5, 'dup');

  const [B, T, NH, HD, pos0] = [1, 3, 2, 4, 2];
  const { cos, sin } = ropeTables(8, HD);
  const x = Float64Array.from(randn(B * T * NH * HD, 34));
  const w = Float64Array.from(randn(x.length, 35));
  for (const interleaved of [false, true]) {
    const grad = refRope(w, cos, sin, B, T, NH, HD, pos0, interleaved, true);
    const f = (xx: Float64Array) => dot(w, refRope(xx, cos, sin, B, T, NH, HD, pos0, interleaved, false));
    expectClose(grad, finiteDiff(f, x), 1e-6, 1e-5, `rope interleaved=${interleaved}`);
  }

  const [N, V] = [2, 5];
  const logits = Float64Array.from(randn(N * V, 36));
  const targets = Int32Array.from([3, 0]);
  const loss = (l: Float64Array) => refCrossEntropy(l, targets, N, V, 1).losses.reduce((a, b) => a + b, 0);
  expectClose(refCrossEntropy(logits, targets, N, V, 1).grad, finiteDiff(loss, logits), 1e-6, 1e-5, 'dlogits');
});


test('attention reference backward agrees with finite differences', () => {
  const s: AttnShape = { B: 1, T: 3, NH: 2, NKV: 1, HD: 2, scale: 0.7 };
  const q = Float64Array.from(randn(s.B * s.T * s.NH * s.HD, 111));
  const k = Float64Array.from(randn(s.B * s.T * s.NKV * s.HD, 112));
  const v = Float64Array.from(randn(k.length, 113));
  const dout = Float64Array.from(randn(q.length, 114));
  const g = refAttentionBackward(s, q, k, v, dout);
  expectClose(g.dq, finiteDiff((x) => dot(dout, refAttention(s, x, k, v).out), q), 1e-6, 1e-5, 'dq');
  expectClose(g.dk, finiteDiff((x) => dot(dout, refAttention(s, q, x, v).out), k), 1e-6, 1e-5, 'dk');
  expectClose(g.dv, finiteDiff((x) => dot(dout, refAttention(s, q, k, x).out), v), 1e-6, 1e-5, 'dv');
});

// ---- kernels on every backend ----

describeEachBackend((backend, fixture) => {

  test.each([1, 255, 4099])('memory round trip and casts, n=%i', (n) => {
    const x = randn(n, 1, 3);
    x[0] = 1 + 1 / 256; // a rounding tie: to even
    const src = fixture.buf.f32(x);
    const half = fixture.buf.alloc(2 * n);
    const back = fixture.buf.alloc(4 * n);
    backend.k.castF32ToBf16(half, src, n);
    backend.k.castBf16ToF32(back, half, n);
    expectClose(fixture.buf.readF32(back, n), roundBf16(x), 0, 0, 'bf16 round trip');
    expect(fixture.buf.readF32(back, 1)[0]).toBe(1);
    const copy = fixture.buf.alloc(4 * n);
    backend.k.copy(copy, src, 4 * n);
    expectClose(fixture.buf.readF32(copy, n), x, 0, 0, 'copy');
    backend.k.fill(copy, n, 2.5);
    expect(fixture.buf.readF32(copy, n).every((v) => v === 2.5)).toBe(true);
    backend.k.zero(copy, 4 * n);
    expect(fixture.buf.readF32(copy, n).every((v) => v === 0)).toBe(true);
  });

  test.each([
    [1, 1, true],
    [7, 33, true],
    [17, 512, true],
    [5, 768, false],
  ])('rmsnorm forward and backward, N=%i C=%i residual=%s', (N, C, withResidual) => {
    const eps = 1e-6;
    const x = roundBf16(randn(N * C, 21));
    const r = withResidual ? roundBf16(randn(N * C, 22)) : null;
    const w = roundBf16(randn(C, 23, 0.5).map((v) => 1 + v));
    const dy = roundBf16(randn(N * C, 24));
    const dh0 = roundBf16(randn(N * C, 25, 0.1)); // existing gradient: the kernel adds to it
    const dw0 = Float64Array.from(randn(C, 26, 0.1));

    const ref = refRmsnorm(x, r, w, N, C, eps);
    const refB = refRmsnormBackward(dy, ref.h, w, N, C, eps);

    const [y, h, rstd] = [fixture.buf.alloc(2 * N * C), fixture.buf.alloc(2 * N * C), fixture.buf.alloc(4 * N)];
    backend.k.rmsnormForward(y, h, rstd, fixture.buf.bf16(x), r ? fixture.buf.bf16(r) : 0, fixture.buf.bf16(w), N, C, eps);
    expectClose(fixture.buf.readBf16(h, N * C), ref.h, 0, 0, 'h = x + residual');
    expectClose(fixture.buf.readF32(rstd, N), ref.rstd, 0, 1e-5, 'rstd');
    expectClose(fixture.buf.readBf16(y, N * C), ref.y, 1e-6, BF16_RTOL, 'y');

    const [dh, dw] = [fixture.buf.bf16(dh0), fixture.buf.f32(dw0)];
    backend.k.rmsnormBackward(dh, dw, fixture.buf.bf16(dy), h, fixture.buf.bf16(w), rstd, N, C);
    const scale = Math.max(...refB.dh.map(Math.abs));
    expectClose(fixture.buf.readBf16(dh, N * C), refB.dh.map((v, i) => v + dh0[i]), 1e-3 * scale, BF16_RTOL, 'dh');
    expectClose(fixture.buf.readF32(dw, C), refB.dw.map((v, i) => v + dw0[i]), 1e-4, 1e-4, 'dweight');
  });

  test.each([1, 1000, 3 * 4096 + 7])('swiglu forward and backward, n=%i', (n) => {
    const g = roundBf16(randn(n, 41, 2));
    const u = roundBf16(randn(n, 42));
    const dout = roundBf16(randn(n, 43));
    const dg0 = roundBf16(randn(n, 44, 0.1));
    const du0 = roundBf16(randn(n, 45, 0.1));
    const [pg, pu, out] = [fixture.buf.bf16(g), fixture.buf.bf16(u), fixture.buf.alloc(2 * n)];
    backend.k.swigluForward(out, pg, pu, n);
    expectClose(fixture.buf.readBf16(out, n), refSwiglu(g, u), 1e-6, BF16_RTOL, 'out');
    const [dg, du] = [fixture.buf.bf16(dg0), fixture.buf.bf16(du0)];
    backend.k.swigluBackward(dg, du, fixture.buf.bf16(dout), pg, pu, n);
    const ref = refSwigluBackward(dout, g, u);
    expectClose(fixture.buf.readBf16(dg, n), ref.dg.map((v, i) => v + dg0[i]), 1e-3, BF16_RTOL, 'dgate');
    expectClose(fixture.buf.readBf16(du, n), ref.du.map((v, i) => v + du0[i]), 1e-3, BF16_RTOL, 'dup');
  });

  test.each([
    [2, 5, 3, 8, 0, false],
    [1, 1, 1, 2, 9, true],
    [2, 17, 8, 64, 3, false],
  ])('rope B=%i T=%i NH=%i HD=%i pos0=%i interleaved=%s, forward and backward', (B, T, NH, HD, pos0, interleaved) => {
    const n = B * T * NH * HD;
    const { cos, sin } = ropeTables(pos0 + T, HD);
    const x = roundBf16(randn(n, 51));
    const dy = roundBf16(randn(n, 52));
    const dx0 = roundBf16(randn(n, 53, 0.1));
    const [pc, ps] = [fixture.buf.f32(cos), fixture.buf.f32(sin)];
    const y = fixture.buf.alloc(2 * n);
    backend.k.rope(y, fixture.buf.bf16(x), pc, ps, B, T, NH, HD, pos0, interleaved, false);
    expectClose(fixture.buf.readBf16(y, n), refRope(x, cos, sin, B, T, NH, HD, pos0, interleaved, false), 1e-6, BF16_RTOL, 'y');
    const dx = fixture.buf.bf16(dx0);
    backend.k.rope(dx, fixture.buf.bf16(dy), pc, ps, B, T, NH, HD, pos0, interleaved, true);
    const ref = refRope(dy, cos, sin, B, T, NH, HD, pos0, interleaved, true);
    expectClose(fixture.buf.readBf16(dx, n), ref.map((v, i) => v + dx0[i]), 1e-3, BF16_RTOL, 'dx');
  });

  test.each([
    [1, 1, 1],
    [37, 24, 10],
    [200, 8, 6400],
  ])('embedding forward and deterministic backward, N=%i C=%i V=%i', (N, C, V) => {
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % Math.min(V, 13)); // repeated ids
    const table = roundBf16(randn(V * C, 61));
    const dout = roundBf16(randn(N * C, 62));
    const out = fixture.buf.alloc(2 * N * C);
    const pids = fixture.buf.i32(ids);
    backend.k.embeddingForward(out, pids, fixture.buf.bf16(table), N, C, V);
    const refOut = new Float64Array(N * C).map((_, i) => table[ids[Math.floor(i / C)] * C + (i % C)]);
    expectClose(fixture.buf.readBf16(out, N * C), refOut, 0, 0, 'out');
    const dtable0 = randn(V * C, 63, 0.1);
    const refD = Float64Array.from(dtable0);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) refD[ids[n] * C + c] += dout[n * C + c];
    const pdout = fixture.buf.bf16(dout);
    const [d1, d2] = [fixture.buf.f32(dtable0), fixture.buf.f32(dtable0)];
    backend.k.embeddingBackward(d1, pids, pdout, N, C, V);
    backend.k.embeddingBackward(d2, pids, pdout, N, C, V);
    const got = fixture.buf.readF32(d1, V * C);
    expectClose(got, refD, 1e-5, 1e-5, 'dtable');
    expectClose(fixture.buf.readF32(d2, V * C), got, 0, 0, 'dtable, second run (bit-identical)');
  });

  test.each([
    [1, 2],
    [5, 1000],
    [3, 6400],
  ])('cross-entropy losses and in-place gradient, N=%i V=%i', (N, V) => {
    const logits = roundBf16(randn(N * V, 71, 3));
    const targets = Int32Array.from({ length: N }, (_, n) => (n === 1 ? -100 : (n * 31 + 5) % V));
    const dloss = 1 / N;
    const ref = refCrossEntropy(logits, targets, N, V, dloss);
    const [losses, plogits] = [fixture.buf.alloc(4 * N), fixture.buf.bf16(logits)];
    backend.k.crossEntropy(losses, plogits, fixture.buf.i32(targets), N, V, dloss);
    expectClose(fixture.buf.readF32(losses, N), ref.losses, 1e-5, 1e-5, 'losses');
    expectClose(fixture.buf.readBf16(plogits, N * V), ref.grad, 1e-6, BF16_RTOL, 'dlogits');
  });

  test.each([1, 257, 5000])('AdamW over fp32 master weights, n=%i', (n) => {
    const state: AdamState = {
      master: Float64Array.from(randn(n, 81)),
      m: new Float64Array(n),
      v: new Float64Array(n),
    };
    const [master, param, m, v] = [fixture.buf.f32(state.master), fixture.buf.alloc(2 * n), fixture.buf.f32(state.m), fixture.buf.f32(state.v)];
    const { lr, beta1, beta2, eps, weightDecay, gradScale } = ADAM;
    for (let step = 1; step <= 2; step++) {
      const grad = Float64Array.from(randn(n, 82 + step));
      refAdamwStep(state, grad, step);
      backend.k.adamw(master, param, fixture.buf.f32(grad), m, v, n, lr, beta1, beta2, eps, weightDecay, 1 - beta1 ** step, 1 - beta2 ** step, gradScale, 0);
    }
    const got = fixture.buf.readF32(master, n);
    expectClose(got, state.master, 1e-6, 1e-5, 'master');
    expectClose(fixture.buf.readF32(m, n), state.m, 1e-7, 1e-5, 'm');
    expectClose(fixture.buf.readF32(v, n), state.v, 1e-9, 1e-4, 'v');
    expectClose(fixture.buf.readBf16(param, n), roundBf16(got), 0, 0, 'param = bf16(master)');
  });

  test('AdamW stochastic rounding is unbiased and reproducible from its seed', () => {
    const n = 4096;
    // lr = 0 keeps the master at 1 + 0.3 ulp(bf16): nearest rounding always gives 1, stochastic rounding
    // gives 1 + 1/128 for about 30% of the elements.
    const value = 1 + 0.3 / 128;
    const run = (seed: number) => {
      const param = fixture.buf.alloc(2 * n);
      const zeros = new Float32Array(n);
      backend.k.adamw(fixture.buf.f32(new Float32Array(n).fill(value)), param, fixture.buf.f32(zeros), fixture.buf.f32(zeros), fixture.buf.f32(zeros), n, 0, 0.9, 0.95, 1e-8, 0, 0.1, 0.05, 1, seed);
      return fixture.buf.readBf16(param, n);
    };
    const a = run(12345);
    const mean = a.reduce((s, x) => s + x, 0) / n;
    expect(Math.abs(mean - value)).toBeLessThan(0.1 / 128); // 0.3 +- ~0.02 of an ulp
    expect(a.every((x) => x === 1 || x === 1 + 1 / 128)).toBe(true);
    expectClose(run(12345), a, 0, 0, 'same seed');
    expect(run(0).every((x) => x === 1)).toBe(true);
  });

  test.each([1, 300, 40003])('sum of squares for the global norm, n=%i', (n) => {
    const x = randn(n, 91);
    const out = fixture.buf.f32(new Float32Array(129).fill(0).map((_, i) => (i === 0 ? 2 : 0)));
    backend.k.sumSquares(out, fixture.buf.f32(x), n);
    const ref = x.reduce((s, v) => s + v * v, 2);
    expectClose(fixture.buf.readF32(out, 1), [ref], 0, 1e-5, 'sum');
  });

  test.each([
    [false, false, 1, 1, 1, 1, false],
    [false, true, 33, 47, 21, 2, false],
    [true, false, 16, 32, 64, 1, true],
    [true, true, 40, 17, 50, 3, false],
  ])('gemm transA=%s transB=%s M=%i N=%i K=%i batch=%i, C bf16=%s', (transA, transB, M, N, K, batch, cBf16) => {
    const A = roundBf16(randn(batch * M * K, 101));
    const B = roundBf16(randn(batch * K * N, 102));
    const C0 = cBf16 ? roundBf16(randn(batch * M * N, 103)) : Float64Array.from(randn(batch * M * N, 103));
    const [alpha, beta] = [0.5, batch === 1 ? 0 : 1.5];
    const ref = refGemm(transA, transB, M, N, K, alpha, A, B, beta, C0, batch);
    const scale = Math.sqrt(K); // typical size of a sum of K products of unit normals
    const [pa, pb] = [fixture.buf.bf16(A), fixture.buf.bf16(B)];
    const [lda, ldb] = [transA ? M : K, transB ? K : N];
    for (const fn of ['gemm', 'gemmTiled'] as const) {
      const pc = cBf16 ? fixture.buf.bf16(C0) : fixture.buf.f32(C0);
      backend.k[fn](transA, transB, M, N, K, alpha, pa, lda, M * K, pb, ldb, K * N, beta, pc, cBf16, N, M * N, batch);
      const got = cBf16 ? fixture.buf.readBf16(pc, batch * M * N) : fixture.buf.readF32(pc, batch * M * N);
      expectClose(got, ref, 1e-5 * scale, cBf16 ? BF16_RTOL : 1e-5, fn);
    }
  });

  test.each([
    [1, 1, 1, 1, 32],
    [2, 9, 4, 2, 32],
    [1, 20, 8, 2, 64],
  ])('causal attention B=%i T=%i NH=%i NKV=%i HD=%i, forward and backward', (B, T, NH, NKV, HD) => {
    const s: AttnShape = { B, T, NH, NKV, HD, scale: 1 / Math.sqrt(HD) };
    const q = roundBf16(randn(B * T * NH * HD, 121));
    const k = roundBf16(randn(B * T * NKV * HD, 122));
    const v = roundBf16(randn(B * T * NKV * HD, 123));
    const dout = roundBf16(randn(q.length, 124));
    const ref = refAttention(s, q, k, v);
    const [pq, pk, pv] = [fixture.buf.bf16(q), fixture.buf.bf16(k), fixture.buf.bf16(v)];
    const [out, lse] = [fixture.buf.alloc(2 * q.length), fixture.buf.alloc(4 * B * NH * T)];
    backend.k.attentionForward(out, lse, pq, pk, pv, B, T, NH, NKV, HD, s.scale);
    // atol: the kernel rounds P to bf16 for P V on tensor cores (2^-9 per weight, up to ~2e-3 max|v| with few
    // keys); test/cuda-attention.test.ts checks that bound element by element.
    expectClose(fixture.buf.readBf16(out, q.length), ref.out, 1e-2, BF16_RTOL, 'out');
    expectClose(fixture.buf.readF32(lse, B * NH * T), ref.lse, 1e-5, 1e-5, 'lse');
    // The backward reads the kernel's own (bf16) output, like training does; the reference uses its own.
    const g = refAttentionBackward(s, q, k, v, dout);
    const [dq, dk, dv] = [fixture.buf.bf16(new Float32Array(q.length)), fixture.buf.bf16(new Float32Array(k.length)), fixture.buf.bf16(new Float32Array(v.length))];
    backend.k.attentionBackward(dq, dk, dv, fixture.buf.bf16(dout), out, lse, pq, pk, pv, B, T, NH, NKV, HD, s.scale);
    expectClose(fixture.buf.readBf16(dq, q.length), g.dq, 2e-2, 2 * BF16_RTOL, 'dq');
    expectClose(fixture.buf.readBf16(dk, k.length), g.dk, 2e-2, 2 * BF16_RTOL, 'dk');
    expectClose(fixture.buf.readBf16(dv, v.length), g.dv, 2e-2, 2 * BF16_RTOL, 'dv');
  });
});
