// RoPE (lib/ops/rope.ts): the table against MiniMind's fixture and a float32 emulation of precompute_pos_cis;
// both rotation styles against a float64 reference, at offsets, in place; the backward against the
// reference's transpose and the reference backward against central finite differences; the scaled tables
// (linear: the plain table at p / F; YaRN: a float64 reference of the formula; factor 1: the plain table).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backward } from '../lib/autograd/tape';
import { disposeRopeTable, rope, ropeInPlace_, RopeStyle, ropeTable, scaledRopeTable } from '../lib/ops/rope';
import { resetStepArenas } from '../lib/tensor/memory';
import { Tensor } from '../lib/tensor/tensor';
import { dot, expectClose, finiteDiff, leaf, randn } from './helpers';

afterEach(() => resetStepArenas());

/** MiniMind's precompute_pos_cis in float32, step by step (Math.fround after every operation). */
function refTable(maxT: number, HD: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const f = Math.fround, half = HD / 2;
  const cos = new Float64Array(maxT * half), sin = new Float64Array(maxT * half);
  for (let i = 0; i < half; i++) {
    const frequency = f(1 / f(Math.pow(theta, f(f(2 * i) / HD))));
    for (let p = 0; p < maxT; p++) {
      const angle = f(p * frequency);
      cos[p * half + i] = f(Math.cos(angle));
      sin[p * half + i] = f(Math.sin(angle));
    }
  }
  return { cos, sin };
}

/** Rotates x [B, T, H, HD] in float64 by +angle (or -angle) at positions offset..offset+T-1. */
function refRope(x: ArrayLike<number>, shape: number[], table: { cos: Float64Array; sin: Float64Array },
  style: RopeStyle, offset: number, sign = 1): Float64Array {
  const [B, T, H, HD] = shape, half = HD / 2;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * HD;
        for (let i = 0; i < half; i++) {
          const c = table.cos[(offset + t) * half + i], s = sign * table.sin[(offset + t) * half + i];
          const ia = style === 'interleaved' ? base + 2 * i : base + i;
          const ib = style === 'interleaved' ? ia + 1 : ia + half;
          out[ia] = x[ia] * c - x[ib] * s;
          out[ib] = x[ia] * s + x[ib] * c;
        }
      }
  return out;
}

test('the table matches the fixture (MiniMind v1, head_dim 32, theta 1e4)', () => {
  const file = path.join(__dirname, '../../shared/fixtures/minimind/golden_v1_tiny_forward.json');
  const fixture = JSON.parse(fs.readFileSync(file, 'utf8')).rope_table_head_dim32_theta1e4 as
    { positions: number[]; cos: number[][]; sin: number[][] };
  const table = ropeTable(8, 32, 1e4);
  const cos = table.cos.toArray(), sin = table.sin.toArray();
  for (const [row, p] of fixture.positions.entries()) {
    expectClose(cos.slice(p * 16, p * 16 + 16), fixture.cos[row], 1e-7, 0, `cos at ${p}`);
    expectClose(sin.slice(p * 16, p * 16 + 16), fixture.sin[row], 1e-7, 0, `sin at ${p}`);
  }
  disposeRopeTable(table);
});

test.each([[512, 32, 1e4], [512, 48, 1e4], [2048, 64, 1e6]])('the table is precompute_pos_cis in float32 (maxT %i, HD %i, theta %d)',
  (maxT, HD, theta) => {
    const table = ropeTable(maxT, HD, theta);
    const ref = refTable(maxT, HD, theta);
    // Within one float32 rounding of the emulation (the cos/sin of a float angle, rounded either way).
    expectClose(table.cos.toArray(), ref.cos, 1.2e-7, 0, 'cos');
    expectClose(table.sin.toArray(), ref.sin, 1.2e-7, 0, 'sin');
    disposeRopeTable(table);
  });

describe.each(['interleaved', 'half'] as const)('rope %s', (style) => {
  const table = ropeTable(64, 32, 1e4);
  const ref = { cos: Float64Array.from(table.cos.toArray()), sin: Float64Array.from(table.sin.toArray()) };
  afterAll(() => disposeRopeTable(table));

  test.each([[[2, 5, 3, 32], 0], [[1, 7, 4, 32], 9], [[1, 1, 2, 32], 63]])('forward %j at offset %i matches the reference',
    (shape, offset) => {
      const x = randn(shape.reduce((a, b) => a * b), 1);
      const expected = refRope(x, shape, ref, style, offset);
      expectClose(rope(Tensor.from(x, shape), table, style, offset).toArray(), expected, 1e-6, 1e-6);
      const inPlace = Tensor.from(x, shape);
      expect(ropeInPlace_(inPlace, table, style, offset)).toBe(inPlace);
      expectClose(inPlace.toArray(), expected, 1e-6, 1e-6, 'in place');
    });

  test('backward rotates the gradient back (the transpose of the rotation)', () => {
    const shape = [2, 6, 2, 32], n = 2 * 6 * 2 * 32;
    const x = randn(n, 2), w = randn(n, 3);
    const tx = leaf(x, shape);
    backward(rope(tx, table, style, 5), Tensor.from(w, shape));
    expectClose(tx.grad!.toArray(), refRope(w, shape, ref, style, 5, -1), 1e-6, 1e-6);
  });

  test('reference backward agrees with central finite differences', () => {
    const shape = [1, 3, 1, 32], n = 96;
    const x = Float64Array.from(randn(n, 4)), w = randn(n, 5);
    const fd = finiteDiff((xx) => dot(w, refRope(xx, shape, ref, style, 2)), x);
    expectClose(refRope(w, shape, ref, style, 2, -1), fd, 1e-7, 1e-6);
  });
});

test('bad inputs get clear errors', () => {
  const table = ropeTable(16, 32, 1e4);
  expect(() => rope(Tensor.zeros([1, 4, 2, 16]), table, 'half')).toThrow(/head dim 16/);
  expect(() => rope(Tensor.zeros([1, 4, 2, 32]), table, 'half', 13)).toThrow(/positions 13..16 outside the table/);
  expect(() => ropeTable(16, 31, 1e4)).toThrow(/even/);
  disposeRopeTable(table);
});

describe('RoPE scaling', () => {
  /** The table's values as [maxT][HD/2] rows of cos and sin. */
  const rows = (t: { cos: Tensor; sin: Tensor }, p: number, half: number) =>
    [...t.cos.toArray().slice(p * half, (p + 1) * half), ...t.sin.toArray().slice(p * half, (p + 1) * half)];

  test.each([[2, 32, 1e4], [4, 48, 1e6], [2.5, 32, 1e4]])('linear (F = %d, HD %i, theta %d) is the plain table at p / F',
    (F, HD, theta) => {
      const L = 40, maxT = Math.floor(L * F), half = HD / 2;
      const table = ropeTable(maxT, HD, theta, { type: 'linear', factor: F }, L);
      const plain = ropeTable(L, HD, theta);
      // Where p / F is a whole position k the row is the plain row k.
      for (let k = 0; k * F < maxT; k++) {
        if (Number.isInteger(k * F)) expect(rows(table, k * F, half)).toEqual(rows(plain, k, half));
      }
      // Everywhere: MiniMind's float32 steps at position p / F, emulated independently.
      const f = Math.fround, cos = new Float64Array(maxT * half), sin = new Float64Array(maxT * half);
      for (let i = 0; i < half; i++) {
        const frequency = f(1 / f(Math.pow(theta, f(f(2 * i) / HD))));
        for (let p = 0; p < maxT; p++) {
          cos[p * half + i] = f(Math.cos(f(f(p / F) * frequency)));
          sin[p * half + i] = f(Math.sin(f(f(p / F) * frequency)));
        }
      }
      expectClose(table.cos.toArray(), cos, 1.2e-7, 0, 'cos');
      expectClose(table.sin.toArray(), sin, 1.2e-7, 0, 'sin');
      disposeRopeTable(table);
      disposeRopeTable(plain);
    });

  /** YaRN in float64, from the paper's definitions (beta_fast 32, beta_slow 1 over the original context L). */
  function yarnReference(maxT: number, HD: number, theta: number, F: number, L: number) {
    const half = HD / 2;
    // The dimension index at which a frequency makes `turns` full rotations over L positions.
    const dimensionFor = (turns: number) => (HD * Math.log(L / (turns * 2 * Math.PI))) / (2 * Math.log(theta));
    const low = Math.max(0, Math.floor(dimensionFor(32))), high = Math.min(HD - 1, Math.ceil(dimensionFor(1)));
    const attention = 1 + 0.1 * Math.log(F);
    const cos = new Float64Array(maxT * half), sin = new Float64Array(maxT * half);
    for (let i = 0; i < half; i++) {
      const ramp = Math.min(1, Math.max(0, (i - low) / (high === low ? 0.001 : high - low)));
      const extrapolated = Math.pow(theta, -2 * i / HD), interpolated = extrapolated / F;
      const frequency = interpolated * ramp + extrapolated * (1 - ramp);
      for (let p = 0; p < maxT; p++) {
        cos[p * half + i] = attention * Math.cos(p * frequency);
        sin[p * half + i] = attention * Math.sin(p * frequency);
      }
    }
    return { cos, sin, low, high };
  }

  test.each([[4, 32, 1e4, 64], [2, 64, 1e6, 128], [8, 48, 1e4, 32]])('yarn (F = %d, HD %i, theta %d, L %i) is the formula',
    (F, HD, theta, L) => {
      const maxT = L * F, half = HD / 2;
      const table = ropeTable(maxT, HD, theta, { type: 'yarn', factor: F }, L);
      const ref = yarnReference(maxT, HD, theta, F, L);
      expect(ref.low).toBeLessThan(half); // both regimes occur: kept high frequencies and interpolated low ones
      expect(ref.high).toBeGreaterThan(0);
      // float32 frequency and angle: the angle's relative error is a few float32 roundings.
      const tol = 4e-7 * maxT;
      expectClose(table.cos.toArray(), ref.cos, tol, 0, 'cos');
      expectClose(table.sin.toArray(), ref.sin, tol, 0, 'sin');
      disposeRopeTable(table);
    });

  test.each(['linear', 'yarn'] as const)('%s with factor 1 is the plain table', (type) => {
    const table = ropeTable(64, 32, 1e4, { type, factor: 1 }, 64);
    const plain = ropeTable(64, 32, 1e4);
    expect(table.cos.toArray()).toEqual(plain.cos.toArray());
    expect(table.sin.toArray()).toEqual(plain.sin.toArray());
    // The scaled formulas themselves reduce to it too (ropeTable takes the native path for factor 1).
    const computed = scaledRopeTable(64, 32, 1e4, { type, factor: 1 }, 64);
    expectClose(computed.cos, plain.cos.toArray(), 1.2e-7, 0, 'cos');
    expectClose(computed.sin, plain.sin.toArray(), 1.2e-7, 0, 'sin');
    disposeRopeTable(table);
    disposeRopeTable(plain);
  });
});
