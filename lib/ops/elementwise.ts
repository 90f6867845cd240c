// Elementwise ops with autograd: add (residuals), mul, scale, and accumulate (the "+=" of every backward).
import { gradOf, needsGrad, record } from '../autograd/tape';
import { Tensor } from '../tensor/tensor';
import { assertShape, kernels, sameDevice } from './kernels';

interface ElementwiseKernels {
  add(out: number, a: number, b: number, n: number): void;
  mul(out: number, a: number, b: number, n: number): void;
  scale(out: number, x: number, alpha: number, n: number): void;
  axpy(y: number, x: number, alpha: number, n: number): void;
}

const k = (t: Tensor) => kernels<ElementwiseKernels>(t.device);

/** dst += alpha * src (same number of elements). Used by backward closures to accumulate gradients. */
export function accumulate(dst: Tensor, src: Tensor, alpha = 1): void {
  if (dst.size !== src.size) throw new Error(`accumulate: ${src.describe()} into ${dst.describe()}`);
  sameDevice('accumulate', dst, src);
  k(dst).axpy(dst.ptr, src.ptr, alpha, dst.size);
}

/** a + b, same shapes. */
export function add(a: Tensor, b: Tensor): Tensor {
  sameDevice('add', a, b);
  assertShape('add', b, a.shape);
  const out = Tensor.empty(a.shape, 'f32', a.device, false);
  k(a).add(out.ptr, a.ptr, b.ptr, a.size);
  if (needsGrad(a, b)) {
    record(out, () => {
      if (a.requiresGrad) accumulate(gradOf(a), out.grad!);
      if (b.requiresGrad) accumulate(gradOf(b), out.grad!);
    });
  }
  return out;
}

/** a * b elementwise, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameDevice('mul', a, b);
  assertShape('mul', b, a.shape);
  const out = Tensor.empty(a.shape, 'f32', a.device, false);
  k(a).mul(out.ptr, a.ptr, b.ptr, a.size);
  if (needsGrad(a, b)) {
    record(out, () => {
      const tmp = Tensor.empty(a.shape, 'f32', a.device, false);
      if (a.requiresGrad) {
        k(a).mul(tmp.ptr, out.grad!.ptr, b.ptr, a.size);
        accumulate(gradOf(a), tmp);
      }
      if (b.requiresGrad) {
        k(a).mul(tmp.ptr, out.grad!.ptr, a.ptr, a.size);
        accumulate(gradOf(b), tmp);
      }
    });
  }
  return out;
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor {
  const out = Tensor.empty(x.shape, 'f32', x.device, false);
  k(x).scale(out.ptr, x.ptr, alpha, x.size);
  if (needsGrad(x)) record(out, () => accumulate(gradOf(x), out.grad!, alpha));
  return out;
}

/** The same values under another shape; gradients flow straight through. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = x.reshapeView(shape);
  if (needsGrad(x)) record(out, () => accumulate(gradOf(x), out.grad!));
  return out;
}
