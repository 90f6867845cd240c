// The CUDA backend's kernel table, as the addon exports it twice (see native/addon/cuda_kernels.cc):
//   native.cuda     - the GPU (present when nvcc compiled the backend; calls fail without a driver);
//   native.cudaEmu  - the same kernel sources run on the CPU by the emulator (native/cuda/emu/cuemu.h), over host
//                     memory. Always present, so tests of CUDA kernels run on machines without a GPU.
// Addresses are numbers; bf16 tensors are raw 16-bit patterns. Shapes: N rows (B*T), C channels.
// Backward kernels accumulate (+=) into gradients. Every call throws with the backend's message on failure.
import { MemoryKernels, cudaEmulated, native } from '../native';

export interface CudaKernels extends MemoryKernels {
  /** Waits for all launched work (a no-op on the emulator, whose launches are synchronous). */
  synchronize(): void;
  castF32ToBf16(out: number, input: number, n: number): void;
  castBf16ToF32(out: number, input: number, n: number): void;
  /** h = x + residual (residual 0: h = x); y = h * rstd * weight; rstd[N] = 1/sqrt(mean(h^2) + eps). bf16 x/h/y/weight. */
  rmsnormForward(y: number, h: number, rstd: number, x: number, residual: number, weight: number, N: number, C: number, eps: number): void;
  /** dh += dL/dh (bf16), dweight += dL/dweight (f32), from dy and the forward's h and rstd. */
  rmsnormBackward(dh: number, dweight: number, dy: number, h: number, weight: number, rstd: number, N: number, C: number): void;
}

/** The order the emulator resumes CUDA threads in: kernels that depend on an order give different results. */
export type EmulatorSchedule = 'fwd' | 'rev' | 'rand';

export interface EmulatorControls {
  configure(schedule: 0 | 1 | 2, seed: number, poison: boolean): void;
}

/** The emulated device's kernels. */
export const cudaEmu = native.cudaEmu as CudaKernels & EmulatorControls;

/** The GPU's kernels, or null when the CUDA backend was not compiled (or device 'cuda' is emulated). */
export const cudaDevice: CudaKernels | null =
  native.cuda.alloc && !cudaEmulated ? (native.cuda as unknown as CudaKernels) : null;

/**
 * Sets how the emulator runs kernels: fiber order at every pass (forward, reverse, or random from `seed`), and
 * whether shared memory is filled with 0xFF bytes (NaN as floats) before each block.
 */
export function configureEmulator(schedule: EmulatorSchedule, seed = 1, poison = true): void {
  cudaEmu.configure(schedule === 'fwd' ? 0 : schedule === 'rev' ? 1 : 2, seed, poison);
}
