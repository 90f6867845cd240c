// Deterministic inputs shared by the rank processes (test/dist/worker.ts) and the tests that check them.
import { Rng } from '../../lib/util/random';

/** Buffer sizes for the collective tests: one element, odd sizes, and one that spans several shm chunks. */
export const SIZES = [1, 7, 1000, 300_001];

/** What rank `rank` contributes to the all-reduce of buffer `i`: values in [-1, 1). */
export function rankData(rank: number, i: number): Float32Array {
  const rng = new Rng(1000 * (rank + 1) + i);
  return Float32Array.from({ length: SIZES[i] }, () => 2 * rng.next() - 1);
}

/** The linear-regression data set the DDP training test learns: y = x . w* + b* + noise, D features. */
export const D = 5;
export const SAMPLES = 64;
export function regressionData(): { x: Float64Array[]; y: number[] } {
  const rng = new Rng(7);
  const wStar = Array.from({ length: D }, (_, k) => k - 2);
  const x = Array.from({ length: SAMPLES }, () => Float64Array.from({ length: D }, () => rng.normal()));
  const y = x.map((row) => row.reduce((s, v, k) => s + v * wStar[k], 0.5) + 0.1 * rng.normal());
  return { x, y };
}
