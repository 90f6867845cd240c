// RMSNorm with autograd (MiniMind's attention_norm, ffn_norm and final norm), over the last dimension:
//   x [..., C] (C = dim), weight [C]:  y = (x * rstd) * weight,  rstd = 1 / sqrt(mean(x^2) + eps)
// The statistics are f32; rstd is saved per row for the backward pass. addRmsnorm fuses a pre-norm block's
// residual add with the norm that follows it: sum = residual + x, normed = rmsnorm(sum).
// On cuda (native/cuda/kernels/rmsnorm.cu): bf16 x, sum and y, the weight's bf16 working copy, f32 rstd and
// f32 weight gradient; the input gradient is computed into a bf16 buffer, then added to each input's gradient.
import { gradOf, needsGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, axpy, GradSink, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { accumulate } from './elementwise';
import { gradBuffer, gradTarget } from './grad-target';
import { assertShape, kernels, sameDevice } from './kernels';

interface NormKernels {
  rmsnormForward(y: number, rstd: number, x: number, weight: number, rows: number, C: number, eps: number): void;
  addRmsnormForward(sum: number, y: number, rstd: number, residual: number, x: number, weight: number, rows: number,
    C: number, eps: number): void;
  rmsnormBackward(dx: number, dxAccumulate: boolean, dx2: number, dx2Accumulate: boolean, dweight: number, dy: number,
    dsum: number, x: number, weight: number, rstd: number, rows: number, C: number): void;
}

const k = (t: Tensor) => kernels<NormKernels>(t.device);

/** Checks x [..., C] against weight [C]; returns C. */
function normWidth(op: string, x: Tensor, weight: Tensor, eps: number): number {
  sameDevice(op, x, weight);
  assertFloat(op, x);
  assertFloat(op, weight);
  if (weight.ndim !== 1) throw new Error(`${op}: weight must be 1-D [C], got ${weight.describe()}`);
  const C = weight.shape[0];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== C) {
    throw new Error(`${op}: the last dimension of x ${x.describe()} must equal the weight's ${C}`);
  }
  if (!(eps >= 0)) throw new Error(`${op}: eps must be >= 0, got ${eps}`);
  return C;
}

/**
 * The norm's backward into the gradients of its input h and of the weight. addRmsnorm's residual and x both
 * receive that gradient (pass both as `inputs`); dsum is a gradient that reaches h directly (its sum output).
 */
function normBackward(dy: Tensor, dsum: Tensor | null, h: Tensor, weight: Tensor, rstd: Tensor,
  inputs: [Tensor] | [Tensor, Tensor]): void {
  const C = weight.shape[0];
  const [a, b] = [gradTarget(inputs[0]), inputs[1] ? gradTarget(inputs[1]) : { ptr: 0, accumulate: false }];
  const dweight = weight.requiresGrad ? gradOf(weight).ptr : 0;
  k(h).rmsnormBackward(a.ptr, a.accumulate, b.ptr, b.accumulate, dweight, dy.ptr, dsum ? dsum.ptr : 0, h.ptr,
    weight.ptr, rstd.ptr, h.size / C, C);
}

/** y = rmsnorm(x) * weight over the last dimension (fp32 statistics, MiniMind's cast order). */
export function rmsnorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const C = normWidth('rmsnorm', x, weight, eps);
  if (x.device === 'cuda') return rmsnormCuda(null, x, weight, eps, C).normed;
  const rows = x.size / C;
  const y = Tensor.empty(x.shape, 'f32', x.device, false);
  const rstd = Tensor.empty([rows], 'f32', x.device, false);
  k(x).rmsnormForward(y.ptr, rstd.ptr, x.ptr, weight.ptr, rows, C, eps);
  if (needsGrad(x, weight)) record(y, () => normBackward(y.grad!, null, x, weight, rstd, [x]));
  return y;
}

/**
 * The residual add and the norm of a pre-norm block in one pass: sum = residual + x, normed =
 * rmsnorm(sum) * weight. Backward: the gradient of sum (from the next residual add) plus the norm's
 * backward flows to both residual and x.
 */
export function addRmsnorm(residual: Tensor, x: Tensor, weight: Tensor, eps: number): { sum: Tensor; normed: Tensor } {
  const C = normWidth('addRmsnorm', x, weight, eps);
  sameDevice('addRmsnorm', residual, x);
  assertShape('addRmsnorm', residual, x.shape);
  if (x.device === 'cuda') return rmsnormCuda(residual, x, weight, eps, C);
  const rows = x.size / C;
  const sum = Tensor.empty(x.shape, 'f32', x.device, false);
  const normed = Tensor.empty(x.shape, 'f32', x.device, false);
  const rstd = Tensor.empty([rows], 'f32', x.device, false);
  k(x).addRmsnormForward(sum.ptr, normed.ptr, rstd.ptr, residual.ptr, x.ptr, weight.ptr, rows, C, eps);
  if (needsGrad(residual, x, weight)) {
    record([sum, normed], () => {
      if (normed.grad) {
        normBackward(normed.grad, sum.grad, sum, weight, rstd, [residual, x]);
      } else {
        // Only the residual path carries a gradient.
        for (const input of [residual, x]) if (input.requiresGrad) accumulate(gradOf(input), sum.grad!);
      }
    });
  }
  return { sum, normed };
}

/**
 * rmsnorm or addRmsnorm on cuda: sum = x (+ residual), normed = rmsnorm(sum) * weight. The backward starts the
 * gradient of sum from sum's own gradient (addRmsnorm's residual path), adds the norm's backward, and passes it
 * to the inputs.
 */
function rmsnormCuda(residual: Tensor | null, x: Tensor, weight: Tensor, eps: number, C: number):
  { sum: Tensor; normed: Tensor } {
  const rows = x.size / C;
  const sum = Tensor.empty(x.shape, 'bf16', 'cuda', false);
  const normed = Tensor.empty(x.shape, 'bf16', 'cuda', false);
  const rstd = Tensor.empty([rows], 'f32', 'cuda', false);
  cudaKernels().rmsnormForward(normed.ptr, sum.ptr, rstd.ptr, asBf16(x).ptr, residual ? asBf16(residual).ptr : 0,
    asBf16(weight).ptr, rows, C, eps);
  const inputs = residual ? [residual, x] : [x];
  if (needsGrad(...inputs, weight)) {
    record([sum, normed], () => {
      // Plain rmsnorm: the kernel accumulates straight into x's gradient.
      if (!residual) return normBackwardCuda(gradSink(x, 'bf16'), normed.grad!, sum, weight, rstd, rows, C);
      const dsum = Tensor.zeros(x.shape, 'bf16', 'cuda');
      if (sum.grad) axpy(dsum, sum.grad);
      if (normed.grad) normBackwardCuda({ ptr: dsum.ptr, finish: () => {} }, normed.grad, sum, weight, rstd, rows, C);
      for (const input of inputs) if (input.requiresGrad) accumulate(gradBuffer(input), dsum);
    });
  }
  return { sum, normed };
}

/** dh += the norm's backward (bf16), weight gradient += (f32). */
function normBackwardCuda(dh: GradSink, dy: Tensor, h: Tensor, weight: Tensor, rstd: Tensor, rows: number,
  C: number): void {
  const dweight = gradSink(weight, 'f32');
  cudaKernels().rmsnormBackward(dh.ptr, dweight.ptr, asBf16(dy).ptr, h.ptr, asBf16(weight).ptr, rstd.ptr, rows, C);
  dh.finish();
  dweight.finish();
}
