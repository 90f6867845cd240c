// Where a fused backward kernel puts an input's gradient. The tape's gradOf() hands out a zero-filled
// buffer to add into; for a memory-bound kernel that zero-fill plus the read-modify-write costs two extra
// passes over memory. So when an activation has no gradient yet, its backward gets a fresh, unfilled buffer
// that the kernel overwrites; otherwise it accumulates (+=) into the existing one, as every backward does.
// A gradient has its tensor's dtype: f32 on the CPU; on cuda, bf16 for bf16 activations (lib/cuda/mixed.ts).
import { gradOf } from '../autograd/tape';
import { Tensor } from '../tensor/tensor';

export interface GradTarget {
  /** The address to write, or 0 when the input needs no gradient (kernels skip null outputs). */
  ptr: number;
  /** true: add into the buffer; false: the buffer is new and must be overwritten entirely. */
  accumulate: boolean;
}

export function gradTarget(t: Tensor): GradTarget {
  if (!t.requiresGrad) return { ptr: 0, accumulate: false };
  // Persistent tensors (parameters) keep persistent, zeroed gradients that accumulate across steps.
  if (t.grad || t.isPersistent) return { ptr: gradOf(t).ptr, accumulate: true };
  t.grad = Tensor.empty(t.shape, t.dtype, t.device, false);
  return { ptr: t.grad.ptr, accumulate: false };
}

/**
 * The zero-filled gradient buffer of t to accumulate into: the tape's gradOf(t) (f32), except that a bf16
 * activation's gradient is bf16 too.
 */
export function gradBuffer(t: Tensor): Tensor {
  if (t.grad || t.dtype === 'f32' || t.isPersistent) return gradOf(t);
  t.grad = Tensor.zeros(t.shape, t.dtype, t.device);
  return t.grad;
}
