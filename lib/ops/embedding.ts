// Token embedding with autograd: ids (i32, any shape, e.g. [B, T]) index the rows of weight [V, C]
// (V = vocab, C = dim); out has shape [...ids.shape, C]. In MiniMind the same weight is the output head
// (tied), so its gradient accumulates from both uses.
import { gradOf, needsGrad, record } from '../autograd/tape';
import { Tensor } from '../tensor/tensor';
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
  assertDtype('embedding', weight, 'f32');
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be [V, C], got ${weight.describe()}`);
  const [V, C] = weight.shape;
  const out = Tensor.empty([...ids.shape, C], 'f32', weight.device, false);
  k(weight).embeddingForward(out.ptr, ids.ptr, weight.ptr, ids.size, V, C);
  if (needsGrad(weight)) {
    // Deterministic scatter-add (no atomics): see native/cpu/embedding.cc.
    record(out, () => k(weight).embeddingBackward(gradOf(weight).ptr, ids.ptr, out.grad!.ptr, ids.size, V, C));
  }
  return out;
}
