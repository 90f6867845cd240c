// CUDA kernels (native/cuda/kernels/) against plain double-precision references. They run on the emulated
// device under forward, reverse and random fiber orders with poisoned shared memory, and on the GPU under
// `npm run test:gpu`. Inputs are rounded to bf16 before the reference sees them, so tolerances only cover the
// kernels' own bf16 output rounding (relative 2^-8) and fp32 accumulation.
import { dot, expectClose, finiteDiff, randn } from './helpers';
import { Backend, Buffers, backends, roundBf16 } from './cuda-helpers';

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

// ---- kernels on every backend ----

describe.each(backends().map((b) => [b.name, b] as [string, Backend]))('%s', (_name, backend) => {
  let buf: Buffers;
  beforeEach(() => {
    backend.setup();
    buf = new Buffers(backend.k);
  });
  afterEach(() => buf.free());

  test.each([1, 255, 4099])('memory round trip and casts, n=%i', (n) => {
    const x = randn(n, 1, 3);
    x[0] = 1 + 1 / 256; // a rounding tie: to even
    const src = buf.f32(x);
    const half = buf.alloc(2 * n);
    const back = buf.alloc(4 * n);
    backend.k.castF32ToBf16(half, src, n);
    backend.k.castBf16ToF32(back, half, n);
    expectClose(buf.readF32(back, n), roundBf16(x), 0, 0, 'bf16 round trip');
    expect(buf.readF32(back, 1)[0]).toBe(1);
    const copy = buf.alloc(4 * n);
    backend.k.copy(copy, src, 4 * n);
    expectClose(buf.readF32(copy, n), x, 0, 0, 'copy');
    backend.k.fill(copy, n, 2.5);
    expect(buf.readF32(copy, n).every((v) => v === 2.5)).toBe(true);
    backend.k.zero(copy, 4 * n);
    expect(buf.readF32(copy, n).every((v) => v === 0)).toBe(true);
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

    const [y, h, rstd] = [buf.alloc(2 * N * C), buf.alloc(2 * N * C), buf.alloc(4 * N)];
    backend.k.rmsnormForward(y, h, rstd, buf.bf16(x), r ? buf.bf16(r) : 0, buf.bf16(w), N, C, eps);
    expectClose(buf.readBf16(h, N * C), ref.h, 0, 0, 'h = x + residual');
    expectClose(buf.readF32(rstd, N), ref.rstd, 0, 1e-5, 'rstd');
    expectClose(buf.readBf16(y, N * C), ref.y, 1e-6, BF16_RTOL, 'y');

    const [dh, dw] = [buf.bf16(dh0), buf.f32(dw0)];
    backend.k.rmsnormBackward(dh, dw, buf.bf16(dy), h, buf.bf16(w), rstd, N, C);
    const scale = Math.max(...refB.dh.map(Math.abs));
    expectClose(buf.readBf16(dh, N * C), refB.dh.map((v, i) => v + dh0[i]), 1e-3 * scale, BF16_RTOL, 'dh');
    expectClose(buf.readF32(dw, C), refB.dw.map((v, i) => v + dw0[i]), 1e-4, 1e-4, 'dweight');
  });
});
