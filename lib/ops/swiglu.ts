// SwiGLU with autograd, the gated activation of MiniMind's FeedForward:
//   a = w1 x ("gate"), b = w3 x ("up"), both [N, F] (N = B*T, F = hidden):  out = silu(a) * b
// The backward is one fused pass that recomputes sigmoid(a) and writes both input gradients.
import { needsGrad, record } from '../autograd/tape';
import { Tensor } from '../tensor/tensor';
import { gradTarget } from './grad-target';
import { assertDtype, assertShape, kernels, sameDevice } from './kernels';

interface SwigluKernels {
  swigluForward(out: number, a: number, b: number, n: number): void;
  swigluBackward(da: number, daAccumulate: boolean, db: number, dbAccumulate: boolean, dout: number, a: number,
    b: number, n: number): void;
}

const k = (t: Tensor) => kernels<SwigluKernels>(t.device);

/** silu(a) * b elementwise; a and b have the same shape. */
export function swiglu(a: Tensor, b: Tensor): Tensor {
  sameDevice('swiglu', a, b);
  assertDtype('swiglu', a, 'f32');
  assertDtype('swiglu', b, 'f32');
  assertShape('swiglu', b, a.shape);
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
