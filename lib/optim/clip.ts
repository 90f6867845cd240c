// Gradient norm and clipping over a list of parameters (torch.nn.utils.clip_grad_norm_; MiniMind clips at 1.0).
// Parameters without a gradient are skipped.
// On cuda: f32 sums of squares accumulated on the device (deterministic), one download for the norm; scaling is
// the in-place axpy g += (coef - 1) g.
import { cudaKernels, SUM_SQUARES_SCRATCH } from '../cuda/kernels';
import { axpy } from '../cuda/mixed';
import { Tensor } from '../tensor/tensor';
import { kernels } from '../ops/kernels';

interface ClipKernels {
  /** sum of squares in double, deterministic (fixed chunks added in order). */
  sumSquares(x: number, n: number): number;
  scale(out: number, x: number, alpha: number, n: number): void;
}

const k = (t: Tensor) => kernels<ClipKernels>(t.device);

/** The global L2 norm of all gradients (double accumulation, deterministic). */
export function gradNorm(params: Tensor[]): number {
  let sumSq = 0;
  const onCuda = params.filter((p) => p.grad && p.grad.device === 'cuda');
  if (onCuda.length) sumSq += cudaSumSquares(onCuda.map((p) => p.grad!));
  for (const p of params) if (p.grad && p.grad.device === 'cpu') sumSq += k(p.grad).sumSquares(p.grad.ptr, p.grad.size);
  return Math.sqrt(sumSq);
}

/** Sum of squares of f32 gradients on cuda, accumulated into one device float. */
function cudaSumSquares(grads: Tensor[]): number {
  const total = Tensor.zeros([1 + SUM_SQUARES_SCRATCH], 'f32', 'cuda');
  for (const g of grads) {
    if (g.dtype !== 'f32') throw new Error(`gradNorm: expected an f32 gradient on cuda, got ${g.describe()}`);
    cudaKernels().sumSquares(total.ptr, g.ptr, g.size);
  }
  return total.narrowView(0, 1).item();
}

/**
 * Scales every gradient by maxNorm / (norm + 1e-6) when that is below 1; returns the norm before clipping.
 * A non-finite norm leaves the gradients alone (the caller, e.g. a loss scaler, should skip the step).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = gradNorm(params);
  const coef = maxNorm / (norm + 1e-6);
  if (!Number.isFinite(norm) || coef >= 1) return norm;
  for (const p of params) {
    if (!p.grad) continue;
    if (p.grad.device === 'cuda') axpy(p.grad, p.grad, coef - 1);
    else k(p.grad).scale(p.grad.ptr, p.grad.ptr, coef, p.grad.size);
  }
  return norm;
}
