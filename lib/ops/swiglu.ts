// SwiGLU with autograd, the gated activation of MiniMind's FeedForward:
//   a = w1 x ("gate"), b = w3 x ("up"), both [N, F] (N = B*T, F = hidden):  out = silu(a) * b
// The backward is one fused pass that recomputes sigmoid(a) and writes both input gradients.
// On cuda (native/cuda/kernels/swiglu.cu): bf16 in and out; the backward accumulates into bf16 gradients.
import { needsGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { gradTarget } from './grad-target';
import { assertShape, kernels, sameDevice } from './kernels';

interface SwigluKernels {
  swigluForward(out: number, a: number, b: number, n: number): void;
  swigluBackward(da: number, daAccumulate: boolean, db: number, dbAccumulate: boolean, dout: number, a: number,
    b: number, n: number): void;
}

const k = (t: Tensor) => kernels<SwigluKernels>(t.device);

/** silu(a) * b elementwise; a and b have the same shape. */
export function swiglu(a: Tensor, b: Tensor): Tensor {
  const device = sameDevice('swiglu', a, b);
  assertFloat('swiglu', a);
  assertFloat('swiglu', b);
  assertShape('swiglu', b, a.shape);
  if (device === 'cuda') return swigluCuda(a, b);
  const out = Tensor.empty(a.shape, 'f32', a.device, false);
  k(a).swigluForward(out.ptr, a.ptr, b.ptr, a.size);
  if (needsGrad(a, b)) {
    record(out, () => {
      const da = gradTarget(a);
      const db = gradTarget(b);
      k(a).swigluBackward(da.ptr, da.accumulate, db.ptr, db.accumulate, out.grad!.ptr, a.ptr, b.ptr, a.size);
    });
  }
  return out;
}

function swigluCuda(a: Tensor, b: Tensor): Tensor {
  const [ab, bb] = [asBf16(a), asBf16(b)];
  const out = Tensor.empty(a.shape, 'bf16', 'cuda', false);
  cudaKernels().swigluForward(out.ptr, ab.ptr, bb.ptr, a.size);
  if (needsGrad(a, b)) {
    record(out, () => {
      const [da, db] = [gradSink(a, 'bf16'), gradSink(b, 'bf16')];
      cudaKernels().swigluBackward(da.ptr, db.ptr, asBf16(out.grad!).ptr, ab.ptr, bb.ptr, a.size);
      da.finish();
      db.finish();
    });
  }
  return out;
}
