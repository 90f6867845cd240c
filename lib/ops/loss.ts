// Fused softmax cross-entropy over logits [N, V] (N = B*T tokens, V = vocab) and i32 targets [N].
//
//   loss_i = logsumexp(logits_i) - logits_i[target_i]
//   crossEntropy = sum_i w_i * loss_i / sum_i w_i     w_i = mask_i (or 1), and 0 where target_i == ignoreIndex
//                                                      (MiniMind: ignore_index=0 and a loss mask; 0 if sum w = 0)
// The forward keeps only each row's logsumexp. The backward writes (softmax - onehot) * w_i * dloss / sum w
// **over the logits buffer itself** and hands that buffer to the logits as their gradient, so no V-wide
// probability or gradient buffer is ever allocated. The logits are therefore consumed by the backward pass:
// no other op may read them in its own backward (use them for one loss only, or copy them first).
//
// tokenLogProbs (log softmax at the targets, for DPO) has autograd but leaves the logits intact;
// tokenLosses is the per-token loss without autograd, for evaluation.
import { needsGrad, noGrad, record } from '../autograd/tape';
import { Tensor } from '../tensor/tensor';
import { gradTarget } from './grad-target';
import { assertDtype, assertShape, kernels, sameDevice } from './kernels';

interface LossKernels {
  /** Throws a RangeError naming the first target outside [0, V) (other than ignoreIndex). Returns sum w. */
  crossEntropyForward(loss: number, lse: number, logits: number, targets: number, mask: number, N: number, V: number,
    ignoreIndex: number): number;
  tokenLogprobsForward(logp: number, lse: number, logits: number, targets: number, N: number, V: number): void;
  /** grad = (softmax - onehot) * rowScale[i] * scalar[0] * scale; grad may be the logits (in place). */
  softmaxXentBackward(grad: number, accumulate: boolean, logits: number, lse: number, targets: number, rowScale: number,
    scalar: number, scale: number, N: number, V: number, ignoreIndex: number | null): void;
}

const k = (t: Tensor) => kernels<LossKernels>(t.device);

export interface CrossEntropyOptions {
  /** Targets equal to this count as 0 with weight 0 (torch's default -100; MiniMind uses 0). */
  ignoreIndex?: number;
  /** f32 [N] per-token weights (MiniMind's loss_mask). */
  mask?: Tensor;
}

/** Checks logits [N, V] against targets [N]; returns [N, V]. */
function logitShape(op: string, logits: Tensor, targets: Tensor): [number, number] {
  sameDevice(op, logits, targets);
  assertDtype(op, logits, 'f32');
  assertDtype(op, targets, 'i32');
  if (logits.ndim !== 2) throw new Error(`${op}: logits must be [N, V], got ${logits.describe()}`);
  const [N, V] = logits.shape;
  assertShape(op, targets, [N]);
  return [N, V];
}

/** The weighted mean token loss (a scalar). Its backward overwrites the logits with their gradient. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const [N, V] = logitShape('crossEntropy', logits, targets);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const mask = opts.mask ?? null;
  if (mask) {
    sameDevice('crossEntropy', logits, mask);
    assertDtype('crossEntropy', mask, 'f32');
    assertShape('crossEntropy', mask, [N]);
  }
  const loss = Tensor.empty([], 'f32', logits.device, false);
  const lse = Tensor.empty([N], 'f32', logits.device, false);
  const sumWeights = k(logits).crossEntropyForward(loss.ptr, lse.ptr, logits.ptr, targets.ptr, mask ? mask.ptr : 0, N,
    V, ignoreIndex);
  if (needsGrad(logits)) {
    record(loss, () => {
      const scale = sumWeights === 0 ? 0 : 1 / sumWeights;
      const args = [logits.ptr, lse.ptr, targets.ptr, mask ? mask.ptr : 0, loss.grad!.ptr, scale, N, V,
        ignoreIndex] as const;
      if (logits.grad) {
        k(logits).softmaxXentBackward(logits.grad.ptr, true, ...args);
      } else {
        k(logits).softmaxXentBackward(logits.ptr, false, ...args);
        logits.grad = logits.reshapeView(logits.shape);
      }
    });
  }
  return loss;
}

/** log softmax(logits)[i, targets[i]] for every row, [N], with autograd (the logits stay intact). */
export function tokenLogProbs(logits: Tensor, targets: Tensor): Tensor {
  const [N, V] = logitShape('tokenLogProbs', logits, targets);
  const logp = Tensor.empty([N], 'f32', logits.device, false);
  const lse = Tensor.empty([N], 'f32', logits.device, false);
  k(logits).tokenLogprobsForward(logp.ptr, lse.ptr, logits.ptr, targets.ptr, N, V);
  if (needsGrad(logits)) {
    record(logp, () => {
      // d logp_i / d logits_i = onehot - softmax: the cross-entropy gradient scaled by -dlogp_i.
      const grad = gradTarget(logits);
      k(logits).softmaxXentBackward(grad.ptr, grad.accumulate, logits.ptr, lse.ptr, targets.ptr, logp.grad!.ptr, 0, -1,
        N, V, null);
    });
  }
  return logp;
}

/** Per-token losses logsumexp - logit[target], [N], without autograd (evaluation). */
export function tokenLosses(logits: Tensor, targets: Tensor): Float32Array {
  const logp = noGrad(() => tokenLogProbs(logits, targets)).toArray() as Float32Array;
  return logp.map((v) => -v);
}
