// Elementwise ops with autograd: add (residuals), mul, scale, and accumulate (the "+=" of every backward).
// On cuda every one of them but mul is the mixed-dtype axpy (y += alpha x): add copies a then adds b, scale adds
// alpha x to zeros; mul has its own kernel (f32 or bf16 operands, fp32 math). Outputs keep a's dtype (bf16
// activations, f32 losses), and each gradient its input's.
import { needsGrad, record } from '../autograd/tape';
import { assertFloat, axpy } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { gradBuffer } from './grad-target';
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
  if (dst.device === 'cuda') axpy(dst, src, alpha);
  else k(dst).axpy(dst.ptr, src.ptr, alpha, dst.size);
}

/** a + b, same shapes. */
export function add(a: Tensor, b: Tensor): Tensor {
  sameDevice('add', a, b);
  assertShape('add', b, a.shape);
  let out: Tensor;
  if (a.device === 'cuda') {
    out = Tensor.empty(a.shape, a.dtype, a.device, false).copyFrom(a);
    axpy(out, b);
  } else {
    out = Tensor.empty(a.shape, 'f32', a.device, false);
    k(a).add(out.ptr, a.ptr, b.ptr, a.size);
  }
  if (needsGrad(a, b)) {
    record(out, () => {
      if (a.requiresGrad) accumulate(gradBuffer(a), out.grad!);
      if (b.requiresGrad) accumulate(gradBuffer(b), out.grad!);
    });
  }
  return out;
}

/** a * b elementwise, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameDevice('mul', a, b);
  assertShape('mul', b, a.shape);
  if (a.device === 'cuda') return mulCuda(a, b);
  const out = Tensor.empty(a.shape, 'f32', a.device, false);
  k(a).mul(out.ptr, a.ptr, b.ptr, a.size);
  if (needsGrad(a, b)) {
    record(out, () => {
      const tmp = Tensor.empty(a.shape, 'f32', a.device, false);
      if (a.requiresGrad) {
        k(a).mul(tmp.ptr, out.grad!.ptr, b.ptr, a.size);
        accumulate(gradBuffer(a), tmp);
      }
      if (b.requiresGrad) {
        k(a).mul(tmp.ptr, out.grad!.ptr, a.ptr, a.size);
        accumulate(gradBuffer(b), tmp);
      }
    });
  }
  return out;
}

/** out = x * y on cuda, into a new step tensor of the given dtype. */
function productCuda(x: Tensor, y: Tensor, dtype: 'f32' | 'bf16'): Tensor {
  const out = Tensor.empty(x.shape, dtype, 'cuda', false);
  cudaKernels().mul(out.ptr, dtype === 'bf16', x.ptr, x.dtype === 'bf16', y.ptr, y.dtype === 'bf16', x.size);
  return out;
}

function mulCuda(a: Tensor, b: Tensor): Tensor {
  assertFloat('mul (lib/ops/elementwise.ts): a', a);
  assertFloat('mul (lib/ops/elementwise.ts): b', b);
  const out = productCuda(a, b, a.dtype === 'bf16' ? 'bf16' : 'f32');
  if (needsGrad(a, b)) {
    record(out, () => {
      // d a = dout * b, d b = dout * a, each computed in its gradient's dtype and added to it.
      for (const [input, other] of [[a, b], [b, a]]) {
        if (!input.requiresGrad) continue;
        const grad = gradBuffer(input);
        accumulate(grad, productCuda(out.grad!, other, grad.dtype as 'f32' | 'bf16'));
      }
    });
  }
  return out;
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor {
  let out: Tensor;
  if (x.device === 'cuda') {
    out = Tensor.zeros(x.shape, x.dtype, x.device);
    axpy(out, x, alpha);
  } else {
    out = Tensor.empty(x.shape, 'f32', x.device, false);
    k(x).scale(out.ptr, x.ptr, alpha, x.size);
  }
  if (needsGrad(x)) record(out, () => accumulate(gradBuffer(x), out.grad!, alpha));
  return out;
}

/** The same values under another shape; gradients flow straight through. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = x.reshapeView(shape);
  if (needsGrad(x)) {
    record(out, () => {
      // The first gradient of an activation is the output's gradient itself, reshaped: no copy.
      if (!x.grad && !x.isPersistent) {
        x.grad = out.grad!.reshapeTake(x.shape);
        out.grad = null;
      } else accumulate(gradBuffer(x), out.grad!);
    });
  }
  return out;
}
