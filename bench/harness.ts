// Benchmark plumbing shared by every bench: the machine's measured peak, median timing, and JSON rows.
import { native } from '../lib/native';
import { resetStepArenas } from '../lib/tensor/memory';

export interface Machine {
  threads: number;
  /** The best FP32 FMA throughput measured on this machine, over the ISAs it has (GFLOP/s). */
  peak_gflops: number;
  /** Per ISA, for context: a kernel that only has an AVX2 path is bounded by peak_avx2_gflops. */
  peak_avx2_gflops: number;
  peak_avx512_gflops: number;
  /** STREAM-style triad bandwidth (GB/s). */
  bandwidth_gbps: number;
}

export function measureMachine(): Machine {
  // The best of two measurements: on a shared or virtual machine one of them can catch a busy moment.
  const runs = [0, 1].map(() => native.cpu.measurePeak(768 << 20) as Record<string, number>);
  const p = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, Math.max(runs[0][k], runs[1][k])]));
  return {
    threads: native.cpu.threads(),
    peak_gflops: Math.max(p.gflopsPortable, p.gflopsAvx2, p.gflopsAvx512),
    peak_avx2_gflops: p.gflopsAvx2,
    peak_avx512_gflops: p.gflopsAvx512,
    bandwidth_gbps: p.bandwidthGbps,
  };
}

/** Median wall time (seconds) of fn over at least `minReps` runs and about `minSeconds`, after a warm-up. */
export function medianSeconds(fn: () => void, minReps = 5, minSeconds = 0.3): number {
  fn();
  const times: number[] = [];
  const start = process.hrtime.bigint();
  while (times.length < minReps || Number(process.hrtime.bigint() - start) / 1e9 < minSeconds) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** One kernel measurement, as `bench kernels --json` prints it. */
export interface KernelResult {
  kernel: string;
  pass: 'fwd' | 'bwd';
  shape: string;
  median_s: number;
  gflops: number | null;
  gbps: number | null;
  /** Of peak FLOP/s for compute-bound kernels (those with flops), else of measured bandwidth. */
  pct_peak: number;
}

/** A benchmark case: `prepare` allocates inputs and returns the function to time. */
export interface KernelCase {
  kernel: string;
  pass: 'fwd' | 'bwd';
  shape: string;
  /** Floating-point operations per call (compute-bound kernels). */
  flops?: number;
  /** Bytes that must move to or from memory per call (memory-bound kernels). */
  bytes?: number;
  /**
   * The peak to report against when it is not this machine's CPU (GPU cases: the device's bf16 tensor FLOP/s and
   * memory bandwidth, see bench/kernels/cuda.ts).
   */
  peak?: { gflops: number; gbps: number };
  /**
   * How many kernel calls one run of the prepared function makes (default 1). GPU launches are asynchronous, so a
   * GPU case launches its kernel `repeat` times and then synchronizes; the reported time is per call.
   */
  repeat?: number;
  prepare(): () => void;
}

export function runCase(c: KernelCase, machine: Machine): KernelResult {
  const fn = c.prepare();
  // Outputs come from the step arena: end the "step" after every call so repetitions reuse the memory.
  const s = medianSeconds(() => {
    fn();
    resetStepArenas();
  }) / (c.repeat ?? 1);
  const gflops = c.flops ? c.flops / s / 1e9 : null;
  const gbps = c.bytes ? c.bytes / s / 1e9 : null;
  const peak = c.peak ?? { gflops: machine.peak_gflops, gbps: machine.bandwidth_gbps };
  const pct = gflops !== null ? (100 * gflops) / peak.gflops : (100 * (gbps ?? 0)) / peak.gbps;
  return { kernel: c.kernel, pass: c.pass, shape: c.shape, median_s: s, gflops, gbps, pct_peak: pct };
}
