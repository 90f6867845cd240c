// The tensor-core (WMMA) flash attention of native/cuda/kernels/attention.cu against a plain float64 reference:
// causal, grouped KV heads (NH / NKV = 1, 2, 4), every supported head dim (32, 48, 64, 96, 128), T below, at and
// across the 64- and 128-row tiles (1, 17, 64, 70, 100, 130), on the emulated device under forward, reverse and random fiber
// orders with poisoned shared memory (and on the GPU under `npm run test:gpu`).
// Shapes: q, out [B, T, NH, HD]; k, v [B, T, NKV, HD]; lse [B, NH, T].
//
// Tolerances (bf16, as llm.c states them per kernel). Inputs are rounded to bf16 before the reference sees them.
//   out: the kernel rounds each weight P_ts to bf16 for P V on tensor cores and rounds out once, each a relative
//   error of at most 2^-8 (8 significant bits): |error| <= 2^-8 (sum_s P_ts |v_s| + |out_t|) + 1e-5, element by
//   element. A plain atol/rtol cannot state this: with few keys per row, P rounding alone reaches 4e-3 * max|v|.
//   lse: fp32 scores and exp2/log2 only: atol 1e-4, rtol 1e-5.
//   dq, dk, dv: bf16 P and dS in the matmuls, the kernel's own bf16 out in D, and one bf16 rounding of the
//   accumulated gradient: rtol 2^-6, atol 2e-2 (the gradients here are O(1)).
import { expectClose, randn } from './helpers';
import { describeEachBackend, roundBf16 } from './cuda-helpers';

const GRAD_TOL = { atol: 2e-2, rtol: 1 / 64 };

interface Shape { B: number; T: number; NH: number; NKV: number; HD: number; scale: number }
const qAt = (s: Shape, b: number, t: number, h: number) => ((b * s.T + t) * s.NH + h) * s.HD;
const kvAt = (s: Shape, b: number, t: number, g: number) => ((b * s.T + t) * s.NKV + g) * s.HD;

/** Forward and backward in float64, from the probabilities of each row. dq, dk, dv start from the given values. */
function reference(s: Shape, q: Float64Array, k: Float64Array, v: Float64Array, dout: Float64Array,
  dq0: Float64Array, dk0: Float64Array, dv0: Float64Array) {
  const out = new Float64Array(q.length);
  const outBound = new Float64Array(q.length);  // 2^-8 (sum_s P_ts |v_s| + |out_t|)
  const lse = new Float64Array(s.B * s.NH * s.T);
  const [dq, dk, dv] = [Float64Array.from(dq0), Float64Array.from(dk0), Float64Array.from(dv0)];
  const dotAt = (x: Float64Array, i: number, y: Float64Array, j: number) => {
    let sum = 0;
    for (let d = 0; d < s.HD; d++) sum += x[i + d] * y[j + d];
    return sum;
  };
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.NH; h++) {
      const g = Math.floor(h / (s.NH / s.NKV));
      for (let t = 0; t < s.T; t++) {
        const qi = qAt(s, b, t, h);
        const scores = Array.from({ length: t + 1 }, (_, key) => s.scale * dotAt(q, qi, k, kvAt(s, b, key, g)));
        const max = Math.max(...scores);
        const sum = scores.reduce((acc, x) => acc + Math.exp(x - max), 0);
        const p = scores.map((x) => Math.exp(x - max) / sum);
        lse[(b * s.NH + h) * s.T + t] = max + Math.log(sum);
        for (let key = 0; key <= t; key++)
          for (let d = 0; d < s.HD; d++) {
            out[qi + d] += p[key] * v[kvAt(s, b, key, g) + d];
            outBound[qi + d] += 2 ** -8 * p[key] * Math.abs(v[kvAt(s, b, key, g) + d]);
          }
        for (let d = 0; d < s.HD; d++) outBound[qi + d] += 2 ** -8 * Math.abs(out[qi + d]);
        const D = dotAt(dout, qi, out, qi);
        for (let key = 0; key <= t; key++) {
          const ki = kvAt(s, b, key, g);
          const ds = p[key] * (dotAt(dout, qi, v, ki) - D);
          for (let d = 0; d < s.HD; d++) {
            dq[qi + d] += s.scale * ds * k[ki + d];
            dk[ki + d] += s.scale * ds * q[qi + d];
            dv[ki + d] += p[key] * dout[qi + d];
          }
        }
      }
    }
  return { out, outBound, lse, dq, dk, dv };
}

/** |got - want| <= bound + 1e-5, element by element. */
function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>, what: string) {
  for (let i = 0; i < want.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= bound[i] + 1e-5))
      throw new Error(`${what} mismatch at ${i}: got ${got[i]}, expected ${want[i]} within ${bound[i] + 1e-5}`);
}

interface Case { B: number; T: number; NH: number; NKV: number; HD: number; keyGrowth?: number }

/** Random bf16 inputs; keyGrowth > 0 scales key t by (1 + keyGrowth t) so row maxima keep growing over the tiles. */
function inputs(c: Case, seed: number) {
  const s: Shape = { ...c, scale: 1 / Math.sqrt(c.HD) };
  const kRaw = randn(c.B * c.T * c.NKV * c.HD, seed + 1);
  if (c.keyGrowth) for (let i = 0; i < kRaw.length; i++) kRaw[i] *= 1 + c.keyGrowth * Math.floor(i / (c.NKV * c.HD) % c.T);
  return {
    s,
    q: roundBf16(randn(c.B * c.T * c.NH * c.HD, seed)),
    k: roundBf16(kRaw),
    v: roundBf16(randn(kRaw.length, seed + 2)),
    dout: roundBf16(randn(c.B * c.T * c.NH * c.HD, seed + 3)),
    dq0: roundBf16(randn(c.B * c.T * c.NH * c.HD, seed + 4, 0.5)),
    dk0: roundBf16(randn(kRaw.length, seed + 5, 0.5)),
    dv0: roundBf16(randn(kRaw.length, seed + 6, 0.5)),
  };
}

const CASES: Case[] = [
  { B: 1, T: 1, NH: 1, NKV: 1, HD: 32 },
  { B: 2, T: 17, NH: 2, NKV: 1, HD: 48 },
  { B: 1, T: 70, NH: 4, NKV: 1, HD: 64 },
  { B: 1, T: 64, NH: 2, NKV: 2, HD: 96 },
  { B: 1, T: 17, NH: 4, NKV: 2, HD: 128 },
  { B: 1, T: 130, NH: 2, NKV: 1, HD: 32, keyGrowth: 0.01 },
  { B: 2, T: 70, NH: 2, NKV: 1, HD: 48, keyGrowth: 0.02 },
  { B: 1, T: 100, NH: 2, NKV: 1, HD: 128, keyGrowth: 0.01 },
];

describeEachBackend((backend, fixture) => {

  test.each(CASES.map((c) => [`B=${c.B} T=${c.T} NH=${c.NH} NKV=${c.NKV} HD=${c.HD}${c.keyGrowth ? ' growing keys' : ''}`, c] as [string, Case]))(
    'causal attention %s: forward and backward vs float64', (_label, c) => {
      const { s, q, k, v, dout, dq0, dk0, dv0 } = inputs(c, 200 + c.HD + c.T);
      const ref = reference(s, q, k, v, dout, dq0, dk0, dv0);
      const [pq, pk, pv] = [fixture.buf.bf16(q), fixture.buf.bf16(k), fixture.buf.bf16(v)];
      const [out, lse] = [fixture.buf.alloc(2 * q.length), fixture.buf.alloc(4 * s.B * s.NH * s.T)];
      backend.k.attentionForward(out, lse, pq, pk, pv, s.B, s.T, s.NH, s.NKV, s.HD, s.scale);
      expectWithin(fixture.buf.readBf16(out, q.length), ref.out, ref.outBound, 'out');
      expectClose(fixture.buf.readF32(lse, s.B * s.NH * s.T), ref.lse, 1e-4, 1e-5, 'lse');

      // The backward reads the kernel's own out (as training does) and accumulates into non-zero gradients.
      const [dq, dk, dv] = [fixture.buf.bf16(dq0), fixture.buf.bf16(dk0), fixture.buf.bf16(dv0)];
      backend.k.attentionBackward(dq, dk, dv, fixture.buf.bf16(dout), out, lse, pq, pk, pv, s.B, s.T, s.NH, s.NKV, s.HD, s.scale);
      expectClose(fixture.buf.readBf16(dq, q.length), ref.dq, GRAD_TOL.atol, GRAD_TOL.rtol, 'dq');
      expectClose(fixture.buf.readBf16(dk, k.length), ref.dk, GRAD_TOL.atol, GRAD_TOL.rtol, 'dk');
      expectClose(fixture.buf.readBf16(dv, v.length), ref.dv, GRAD_TOL.atol, GRAD_TOL.rtol, 'dv');
    });

  test('the backward is deterministic: two runs give the same bits', () => {
    const { s, q, k, v, dout } = inputs({ B: 1, T: 70, NH: 4, NKV: 2, HD: 32 }, 300);
    const [pq, pk, pv, pd] = [fixture.buf.bf16(q), fixture.buf.bf16(k), fixture.buf.bf16(v), fixture.buf.bf16(dout)];
    const [out, lse] = [fixture.buf.alloc(2 * q.length), fixture.buf.alloc(4 * s.B * s.NH * s.T)];
    backend.k.attentionForward(out, lse, pq, pk, pv, s.B, s.T, s.NH, s.NKV, s.HD, s.scale);
    const run = () => {
      const grads = [fixture.buf.bf16(new Float32Array(q.length)), fixture.buf.bf16(new Float32Array(k.length)), fixture.buf.bf16(new Float32Array(v.length))];
      backend.k.attentionBackward(grads[0], grads[1], grads[2], pd, out, lse, pq, pk, pv, s.B, s.T, s.NH, s.NKV, s.HD, s.scale);
      return grads.map((p, i) => Array.from(fixture.buf.readBf16(p, [q, k, v][i].length)));
    };
    expect(run()).toEqual(run());
  });

  test('unsupported shapes fail with a clear message', () => {
    const p = fixture.buf.alloc(2 * 80 * 4);
    expect(() => backend.k.attentionForward(p, p, p, p, p, 1, 1, 1, 1, 80, 1)).toThrow(/HD must be 32, 48, 64, 96 or 128/);
    expect(() => backend.k.attentionForward(p, p, p, p, p, 1, 1, 3, 2, 32, 1)).toThrow(/NH must be a multiple of NKV/);
  });
});
