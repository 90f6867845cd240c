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
  /** y += alpha * x over n values, each f32 or bf16 (yBf16, xBf16), fp32 math; y may be x (in-place scaling). */
  axpy(y: number, yBf16: boolean, x: number, xBf16: boolean, alpha: number, n: number): void;
  /** h = x + residual (residual 0: h = x); y = h * rstd * weight; rstd[N] = 1/sqrt(mean(h^2) + eps). bf16 x/h/y/weight. */
  rmsnormForward(y: number, h: number, rstd: number, x: number, residual: number, weight: number, N: number, C: number, eps: number): void;
  /** dh += dL/dh (bf16), dweight += dL/dweight (f32), from dy and the forward's h and rstd. */
  rmsnormBackward(dh: number, dweight: number, dy: number, h: number, weight: number, rstd: number, N: number, C: number): void;
  /** out = silu(gate) * up, n bf16 values. */
  swigluForward(out: number, gate: number, up: number, n: number): void;
  /** dgate += dout * up * silu'(gate); dup += dout * silu(gate). */
  swigluBackward(dgate: number, dup: number, dout: number, gate: number, up: number, n: number): void;
  /**
   * Rotary embedding of x [B, T, NH, HD] bf16 at positions pos0 + t, with cos/sin tables [maxT, HD/2] f32.
   * interleaved: pairs (2i, 2i+1) instead of (i, i + HD/2). backward: out += R^T in (else out = R in).
   */
  rope(out: number, input: number, cos: number, sin: number, B: number, T: number, NH: number, HD: number, pos0: number, interleaved: boolean, backward: boolean): void;
  /** out [N, C] = table[ids] (bf16; ids i32, out-of-range ids give zero rows). */
  embeddingForward(out: number, ids: number, table: number, N: number, C: number, V: number): void;
  /** dtable [V, C] f32 += dout rows, summed in token order (deterministic). */
  embeddingBackward(dtable: number, ids: number, dout: number, N: number, C: number, V: number): void;
  /** losses [N] f32 = logsumexp - logit[target]; logits [N, V] bf16 are overwritten by (softmax - onehot) * dloss. Targets < 0 are ignored. */
  crossEntropy(losses: number, logits: number, targets: number, N: number, V: number, dloss: number): void;
  /** AdamW over f32 master weights, writing bf16 params (stochastic rounding when seed != 0). bc1/bc2 = 1 - beta^step. */
  adamw(master: number, param: number, grad: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number, gradScale: number, seed: number): void;
  /** out[0] += sum of x^2 over n f32 values, deterministically; out holds 1 + SUM_SQUARES_SCRATCH floats. */
  sumSquares(out: number, x: number, n: number): void;
  /**
   * C_b = alpha * op(A_b) @ op(B_b) + beta * C_b (b < batch), row-major like the CPU's sgemm; A and B bf16, fp32
   * accumulation, C f32 or bf16 (cBf16). On the GPU: cuBLASLt when it loads, else the WMMA kernel.
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: number, lda: number, strideA: number, B: number, ldb: number, strideB: number, beta: number, C: number, cBf16: boolean, ldc: number, strideC: number, batch: number): void;
  /** The same with our WMMA kernel only (the GPU's fallback; the emulator's gemm). */
  gemmTiled(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: number, lda: number, strideA: number, B: number, ldb: number, strideB: number, beta: number, C: number, cBf16: boolean, ldc: number, strideC: number, batch: number): void;
  /**
   * Causal attention, flash-style: q/out [B, T, NH, HD], k/v [B, T, NKV, HD] bf16 (head h uses KV head
   * h / (NH / NKV)); lse [B, NH, T] f32 saved for the backward. HD 32, 48, 64, 96 or 128.
   */
  attentionForward(out: number, lse: number, q: number, k: number, v: number, B: number, T: number, NH: number, NKV: number, HD: number, scale: number): void;
  /** dq, dk, dv += gradients (bf16), recomputed from the forward's out and lse. Deterministic. */
  attentionBackward(dq: number, dk: number, dv: number, dout: number, out: number, lse: number, q: number, k: number, v: number, B: number, T: number, NH: number, NKV: number, HD: number, scale: number): void;
  // ---- mixture-of-experts routing (native/cuda/kernels/moe.cu), the contract of native/cpu/moe.h with bf16 rows:
  // N tokens, E experts, k slots, C dims; assignment a = token*k + slot, position p = its expert-sorted row.
  // Gradient addresses of 0 are skipped.
  /**
   * logits [N, E] bf16 -> scores [N, E] f32 (softmax), weights [N, k] f32 (top-k, divided by their sum + 1e-20
   * when renorm), experts/order/positions [N*k] i32, offsets [E+1] i32 (a stable sort by expert).
   */
  moeRoute(logits: number, N: number, E: number, k: number, renorm: boolean, scores: number, weights: number, experts: number, offsets: number, order: number, positions: number): void;
  /** dlogits [N, E] bf16 += the router's backward from dweights [N, k] and/or dscores [N, E] (f32, or 0). */
  moeRouteBackward(dlogits: number, scores: number, weights: number, experts: number, dweights: number, dscores: number, N: number, E: number, k: number, renorm: boolean): void;
  /** out[0] (f32) = sum of coef[b, e] * scores[b, t, e]. */
  moeAuxLoss(out: number, scores: number, coef: number, B: number, T: number, E: number): void;
  /** dscores[b, t, e] += dloss[0] * coef[b, e]. */
  moeAuxLossBackward(dscores: number, dloss: number, coef: number, B: number, T: number, E: number): void;
  /** out [N*k, C] bf16: out[p] = x[order[p] / k]. */
  moeDispatch(out: number, x: number, order: number, N: number, k: number, C: number): void;
  /** dx [N, C] bf16 += the sum over each token's slots, in slot order, of dout[positions[a]]. */
  moeDispatchBackward(dx: number, dout: number, positions: number, N: number, k: number, C: number): void;
  /** y [N, C] bf16 = sum over slots, in slot order, of weights[a] (f32) * expertOut[positions[a]] (bf16). */
  moeCombine(y: number, expertOut: number, weights: number, positions: number, N: number, k: number, C: number): void;
  /** dexpertOut[p] (bf16) += weights[a] * dy[a / k] (a = order[p]); dweights[a] (f32) += dy[a / k] . expertOut[positions[a]]. */
  moeCombineBackward(dexpertOut: number, dweights: number, dy: number, expertOut: number, weights: number, order: number, positions: number, N: number, k: number, C: number): void;
  // ---- the rest of the training stages (DPO, Adam with L2 decay) and decoding with a KV cache ----
  /** out = a * b over n values, each f32 or bf16 (outBf16, aBf16, bBf16), fp32 math. */
  mul(out: number, outBf16: boolean, a: number, aBf16: boolean, b: number, bBf16: boolean, n: number): void;
  /** lse [N] f32 and logp [N] f32 = logits[n, target[n]] - lse[n], logits [N, V] bf16 intact; targets outside [0, V) give 0. */
  tokenLogprobs(logp: number, lse: number, logits: number, targets: number, N: number, V: number): void;
  /** grad [N, V] bf16 (+= when accumulate, else =) dlogp[n] * (onehot - softmax); grad may be the logits. */
  tokenLogprobsBackward(grad: number, accumulate: boolean, logits: number, lse: number, targets: number, dlogp: number, N: number, V: number): void;
  /** adamw's arguments, as torch.optim.Adam: weightDecay * master is added to the gradient (L2), no decoupled decay. */
  adamL2(master: number, param: number, grad: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number, gradScale: number, seed: number): void;
  /**
   * Attention of q/out [B, T, NH, HD] against a KV cache k/v [B, Tk, NKV, HD] (bf16, fp32 math), forward only;
   * causal: query t at position Tk - T + t. HD a multiple of 16 up to 128.
   */
  attentionDecode(out: number, q: number, k: number, v: number, B: number, T: number, Tk: number, NH: number, NKV: number, HD: number, scale: number, causal: boolean): void;
}

/** Scratch floats after out[0] that sumSquares needs. */
export const SUM_SQUARES_SCRATCH = 128;

/** The order the emulator resumes CUDA threads in: kernels that depend on an order give different results. */
export type EmulatorSchedule = 'fwd' | 'rev' | 'rand';

export interface EmulatorControls {
  configure(schedule: 0 | 1 | 2, seed: number, poison: boolean): void;
}

/** The emulated device's kernels. */
export const cudaEmu = native.cudaEmu as unknown as CudaKernels & EmulatorControls;

/** The GPU's kernels, or null when the CUDA backend was not compiled (or device 'cuda' is emulated). */
export const cudaDevice: CudaKernels | null =
  native.cuda.alloc && !cudaEmulated ? (native.cuda as unknown as CudaKernels) : null;

/** The kernels of device 'cuda' (the GPU, or the emulator under MINIMIND_CUDA_EMULATE=1); throws when absent. */
export function cudaKernels(): CudaKernels {
  if (!native.cuda.alloc) {
    throw new Error('device cuda: the CUDA backend is not available in this build (see `minimind-native info`)');
  }
  return native.cuda as unknown as CudaKernels;
}

/**
 * Sets how the emulator runs kernels: fiber order at every pass (forward, reverse, or random from `seed`), and
 * whether shared memory is filled with 0xFF bytes (NaN as floats) before each block.
 */
export function configureEmulator(schedule: EmulatorSchedule, seed = 1, poison = true): void {
  cudaEmu.configure(schedule === 'fwd' ? 0 : schedule === 'rev' ? 1 : 2, seed, poison);
}
