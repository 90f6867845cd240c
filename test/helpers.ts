// Shared test utilities: seeded random data, closeness checks, and central finite differences.
import { Tensor } from '../lib/tensor/tensor';

import { uniform as rng } from '../lib/util/random';

export { rng };
/** n standard-normal values (Box-Muller) times `scale`. */
export function randn(n: number, seed = 1, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** Asserts |a - b| <= atol + rtol * |b| elementwise, reporting the worst index. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-5, rtol = 1e-4, what = ''): void {
  expect(a.length).toBe(b.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(`${what} mismatch at ${worst}: got ${a[worst]}, expected ${b[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/**
 * Central finite differences of a scalar function f(x) (in double precision) at x, for every element.
 * References are written in plain JS with Float64 math, so eps=1e-6 gives ~1e-8 accuracy.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-6): Float64Array {
  const xx = Float64Array.from(x);
  const g = new Float64Array(xx.length);
  for (let i = 0; i < xx.length; i++) {
    const v = xx[i];
    xx[i] = v + eps;
    const fp = f(xx);
    xx[i] = v - eps;
    const fm = f(xx);
    xx[i] = v;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Sum of w[i] * y[i]: a random projection turns a tensor output into a scalar for gradient checks. */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}

/** A leaf tensor that requires a gradient, holding `data`. */
export function leaf(data: ArrayLike<number>, shape: readonly number[]): Tensor {
  const t = Tensor.from(data, shape);
  t.requiresGrad = true;
  return t;
}
