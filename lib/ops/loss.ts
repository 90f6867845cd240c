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
//
// On cuda the kernel (native/cuda/kernels/cross_entropy.cu) is fused further: one pass writes the per-token
// losses (f32) AND the gradient, already scaled by 1 / sum w, over the bf16 logits, so a logits tensor that
// needs a gradient is overwritten by the forward itself (others are copied first). Row weights are applied by
// turning weight-0 rows into ignored targets, so masks must be 0/1 there; the mean is taken on the host (the
// N per-token losses are downloaded). The backward only scales the stored gradient by d(loss).
// tokenLogProbs on cuda mirrors the CPU op: the forward keeps each row's logsumexp and leaves the bf16 logits
// intact; the backward recomputes the softmax from them and writes dlogp * (onehot - softmax) (same kernel file).
import { needsGrad, noGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, axpy, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { gradBuffer, gradTarget } from './grad-target';
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
  assertFloat(op, logits);
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
  if (logits.device === 'cuda') return crossEntropyCuda(logits, targets, ignoreIndex, mask, N, V);
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
  if (logits.device === 'cuda') return tokenLogProbsCuda(logits, targets, N, V);
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

/**
 * The kernel's row targets: -1 (ignored) where the weight is 0 or the target is ignoreIndex; checks that the
 * others are in [0, V) and that the weights are 0 or 1. Returns them with the count of counted rows (sum w).
 */
function cudaRowTargets(op: string, targets: Tensor, mask: Tensor | null, ignoreIndex: number | null, V: number):
  { rows: Tensor; counted: number } {
  const ids = targets.toArray() as Int32Array;
  const weights = mask ? (mask.toArray() as Float32Array) : null;
  const rowTargets = new Int32Array(ids.length);
  let counted = 0;
  for (let i = 0; i < ids.length; i++) {
    const w = weights ? weights[i] : 1;
    if (w !== 0 && w !== 1) throw new Error(`${op} on cuda: mask values must be 0 or 1, got ${w} at row ${i}`);
    const used = w === 1 && ids[i] !== ignoreIndex;
    if (used && (ids[i] < 0 || ids[i] >= V)) throw new RangeError(`${op}: target ${ids[i]} at row ${i} outside [0, ${V})`);
    rowTargets[i] = used ? ids[i] : -1;
    counted += used ? 1 : 0;
  }
  return { rows: Tensor.from(rowTargets, [ids.length], 'i32', 'cuda'), counted };
}

/** bf16 logits the kernel may overwrite: the logits themselves when `inPlace`, else a copy (or an f32 cast). */
function scratchLogits(logits: Tensor, inPlace: boolean): Tensor {
  if (logits.dtype === 'bf16') return inPlace ? logits : Tensor.empty(logits.shape, 'bf16', 'cuda', false).copyFrom(logits);
  const cast = Tensor.empty(logits.shape, 'bf16', 'cuda', false);
  cudaKernels().castF32ToBf16(cast.ptr, logits.ptr, logits.size);
  return cast;
}

function crossEntropyCuda(logits: Tensor, targets: Tensor, ignoreIndex: number, mask: Tensor | null, N: number,
  V: number): Tensor {
  const { rows, counted } = cudaRowTargets('crossEntropy', targets, mask, ignoreIndex, V);
  const grad = scratchLogits(logits, needsGrad(logits));
  const losses = Tensor.empty([N], 'f32', 'cuda', false);
  const invCount = counted === 0 ? 0 : 1 / counted;
  cudaKernels().crossEntropy(losses.ptr, grad.ptr, rows.ptr, N, V, invCount);
  let total = 0;
  for (const l of losses.toArray()) total += l;
  const loss = Tensor.from([total * invCount], [], 'f32', 'cuda');
  if (needsGrad(logits)) {
    record(loss, () => {
      const dloss = loss.grad!.item();
      if (grad === logits && !logits.grad) {
        if (dloss !== 1) axpy(grad, grad, dloss - 1);
        logits.grad = grad.reshapeView(grad.shape);
      } else {
        axpy(gradBuffer(logits), grad, dloss);
      }
    });
  }
  return loss;
}

/** log p per row from the bf16 logits (an f32 input is cast); the backward writes the logits' bf16 gradient. */
function tokenLogProbsCuda(logits: Tensor, targets: Tensor, N: number, V: number): Tensor {
  const { rows } = cudaRowTargets('tokenLogProbs', targets, null, null, V);
  const source = asBf16(logits);
  const logp = Tensor.empty([N], 'f32', 'cuda', false);
  const lse = Tensor.empty([N], 'f32', 'cuda', false);
  cudaKernels().tokenLogprobs(logp.ptr, lse.ptr, source.ptr, rows.ptr, N, V);
  if (needsGrad(logits)) {
    record(logp, () => {
      const backward = (grad: number, accumulate: boolean) => cudaKernels().tokenLogprobsBackward(grad, accumulate,
        source.ptr, lse.ptr, rows.ptr, logp.grad!.ptr, N, V);
      if (logits.dtype === 'bf16') {
        const grad = gradTarget(logits);
        backward(grad.ptr, grad.accumulate);
      } else {
        const sink = gradSink(logits, 'bf16');
        backward(sink.ptr, true);
        sink.finish();
      }
    });
  }
  return logp;
}
