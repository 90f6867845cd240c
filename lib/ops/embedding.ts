// Token embedding with autograd: ids (i32, any shape, e.g. [B, T]) index the rows of weight [V, C]
// (V = vocab, C = dim); out has shape [...ids.shape, C]. In MiniMind the same weight is the output head
// (tied), so its gradient accumulates from both uses.
// On cuda: out is bf16, read from the weight's bf16 working copy; the f32 weight gradient accumulates in token
// order; an id outside [0, V) gives a zero row instead of an error.
import { gradOf, needsGrad, record } from '../autograd/tape';
import { asBf16, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { embeddingHalfWeight, HALF_WEIGHT_TYPE } from './gemm';
import { assertDtype, kernels, sameDevice } from './kernels';

interface EmbeddingKernels {
  /** Throws a RangeError naming the first id outside [0, V). */
  embeddingForward(out: number, ids: number, weight: number, n: number, V: number, C: number): void;
  embeddingBackward(dweight: number, ids: number, dout: number, n: number, V: number, C: number): void;
}

const k = (t: Tensor) => kernels<EmbeddingKernels>(t.device);

/** out[..., :] = weight[ids[...], :]. An id outside [0, V) throws. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  sameDevice('embedding', ids, weight);
  assertDtype('embedding', ids, 'i32');
  if (weight.device === 'cpu' && HALF_WEIGHT_TYPE[weight.dtype] !== undefined) return embeddingHalfWeight(ids, weight);
  assertDtype('embedding', weight, 'f32');
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be [V, C], got ${weight.describe()}`);
  const [V, C] = weight.shape;
  if (weight.device === 'cuda') return embeddingCuda(ids, weight, V, C);
  const out = Tensor.empty([...ids.shape, C], 'f32', weight.device, false);
  k(weight).embeddingForward(out.ptr, ids.ptr, weight.ptr, ids.size, V, C);
  if (needsGrad(weight)) {
    // Deterministic scatter-add (no atomics): see native/cpu/embedding.cc.
    record(out, () => k(weight).embeddingBackward(gradOf(weight).ptr, ids.ptr, out.grad!.ptr, ids.size, V, C));
  }
  return out;
}

function embeddingCuda(ids: Tensor, weight: Tensor, V: number, C: number): Tensor {
  const out = Tensor.empty([...ids.shape, C], 'bf16', 'cuda', false);
  cudaKernels().embeddingForward(out.ptr, ids.ptr, asBf16(weight).ptr, ids.size, C, V);
  if (needsGrad(weight)) {
    record(out, () => {
      const dweight = gradSink(weight, 'f32');
      cudaKernels().embeddingBackward(dweight.ptr, ids.ptr, asBf16(out.grad!).ptr, ids.size, C, V);
      dweight.finish();
    });
  }
  return out;
}
