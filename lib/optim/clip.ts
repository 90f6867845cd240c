// Gradient norm and clipping over a list of parameters (torch.nn.utils.clip_grad_norm_; MiniMind clips at 1.0).
// Parameters without a gradient are skipped.
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
  for (const p of params) if (p.grad) sumSq += k(p.grad).sumSquares(p.grad.ptr, p.grad.size);
  return Math.sqrt(sumSq);
}

/**
 * Scales every gradient by maxNorm / (norm + 1e-6) when that is below 1; returns the norm before clipping.
 * A non-finite norm leaves the gradients alone (the caller, e.g. a loss scaler, should skip the step).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = gradNorm(params);
  const coef = maxNorm / (norm + 1e-6);
  if (Number.isFinite(norm) && coef < 1) for (const p of params) if (p.grad) k(p.grad).scale(p.grad.ptr, p.grad.ptr, coef, p.grad.size);
  return norm;
}
