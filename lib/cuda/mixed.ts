// Mixed precision on device 'cuda': how the ops of lib/ops/ feed the bf16 kernels of lib/cuda/kernels.ts.
//
//   parameters   f32 master weights (the model's persistent tensors, what checkpoints save), each with a bf16
//                working copy that the forward and backward kernels read. AdamW updates the master and writes
//                the copy in the same kernel; code that writes masters otherwise calls refreshWorkingCopies.
//   activations  bf16 (op outputs), with fp32 math inside every kernel; per-row statistics (rstd, logsumexp)
//                and per-token losses are f32.
//   gradients    a tensor's gradient has its dtype: bf16 for activations, f32 for parameters (master grads,
//                accumulated across micro-batches in f32). Optimizer moments and norms are f32.
//
// A kernel that writes a gradient of the other dtype writes a zeroed scratch buffer that is then added (axpy) to
// the real gradient; a kernel that reads bf16 gets f32 inputs cast (masters: their working copy).
import { gradBuffer } from '../ops/grad-target';
import { assertDtype } from '../ops/kernels';
import { DType } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { cudaKernels } from './kernels';


/** master (f32, persistent) -> its bf16 working copy (persistent). */
const workingCopies = new Map<Tensor, Tensor>();

/** The bf16 working copy of a persistent f32 tensor, made by a cast on first use. */
export function workingCopy(master: Tensor): Tensor {
  let copy = workingCopies.get(master);
  if (!copy) {
    copy = Tensor.persistent(master.shape, 'bf16', 'cuda');
    copy.name = `${master.name}.bf16`;
    cudaKernels().castF32ToBf16(copy.ptr, master.ptr, master.size);
    workingCopies.set(master, copy);
  }
  return copy;
}

/** Re-casts the working copies of these masters after they were written other than by the optimizer (loads). */
export function refreshWorkingCopies(masters: Iterable<Tensor>): void {
  for (const m of masters) {
    const copy = workingCopies.get(m);
    if (copy) cudaKernels().castF32ToBf16(copy.ptr, m.ptr, m.size);
  }
}

/** Frees the working copies of these masters (call before disposing them). */
export function releaseWorkingCopies(masters: Iterable<Tensor>): void {
  for (const m of masters) {
    workingCopies.get(m)?.dispose();
    workingCopies.delete(m);
  }
}

/** The dtypes ops compute on: f32 on the CPU; f32 or bf16 on cuda. */
export function assertFloat(op: string, t: Tensor): void {
  if (t.device === 'cpu' || t.dtype !== 'bf16') assertDtype(op, t, 'f32');
}

/** t as bf16 for a kernel to read: itself, a master's working copy, or a cast of an f32 step tensor. */
export function asBf16(t: Tensor): Tensor {
  if (t.dtype === 'bf16') return t;
  if (t.dtype !== 'f32') throw new Error(`cuda: expected an f32 or bf16 tensor, got ${t.describe()}`);
  if (t.isPersistent) return workingCopy(t);
  const cast = Tensor.empty(t.shape, 'bf16', 'cuda', false);
  cudaKernels().castF32ToBf16(cast.ptr, t.ptr, t.size);
  return cast;
}

/** dst += alpha * src, for any mix of f32 and bf16 (fp32 math). */
export function axpy(dst: Tensor, src: Tensor, alpha = 1): void {
  if (dst.size !== src.size) throw new Error(`cuda axpy: ${src.describe()} into ${dst.describe()}`);
  cudaKernels().axpy(dst.ptr, dst.dtype === 'bf16', src.ptr, src.dtype === 'bf16', alpha, dst.size);
}

/**
 * Where a kernel that ACCUMULATES a gradient of `dtype` into t's gradient should write: the gradient itself when
 * the dtypes agree; otherwise a zeroed scratch buffer, added to the gradient by finish(). Inputs that need no
 * gradient get a scratch buffer too (the kernels take no null outputs).
 */
export interface GradSink {
  ptr: number;
  finish(): void;
}

export function gradSink(t: Tensor, dtype: DType): GradSink {
  const scratch = () => Tensor.zeros(t.shape, dtype, 'cuda');
  if (!t.requiresGrad) return { ptr: scratch().ptr, finish: () => {} };
  const grad = gradBuffer(t);
  if (grad.dtype === dtype) return { ptr: grad.ptr, finish: () => {} };
  const tmp = scratch();
  return { ptr: tmp.ptr, finish: () => axpy(grad, tmp) };
}
