// Mixture-of-experts routing with autograd (MiniMind §1.9): the router, its auxiliary loss, and the permutation
// of token rows into expert-sorted order and back.
//
// Shapes: N = B*T tokens, E routed experts, k = experts per token (top-k), C = model dim.
//   moeRoute(gateLogits [N,E], k, normTopk)  -> MoeRouting: softmax scores, top-k weights/experts, sort by expert
//   moeAuxLoss(routing, B, T, alpha, seqAux) -> scalar load-balancing loss (both MiniMind modes)
//   moeDispatch(x [N,C], routing)            -> [N*k, C] token rows grouped by expert (each expert's rows contiguous)
//   moeCombine(expertOut [N*k,C], routing)   -> y [N,C], y[t] = sum over slots of weight * expert row
// An assignment a = token*k + slot is one (token, chosen expert) pair. Expert e's rows are positions
// offsets[e] .. offsets[e+1]-1 of the sorted order, so an MoE layer runs expert e on
// dispatched.narrowView(offsets[e], counts[e]). Sums over a token's slots run in slot order, so results are
// deterministic (no atomics) and independent of the thread count.
//
// On cuda (native/cuda/kernels/moe.cu, the same contract): gate logits and token/expert rows are bf16 (f32 inputs
// are cast), scores and weights f32; row gradients are accumulated in bf16, weight and score gradients in f32.
// Each moeRoute downloads its routing integers (offsets, experts, order: (E+1) + 2*N*k int32, a few KiB per layer)
// to the host in one copy: the MoE layer slices each expert's rows by the offsets, and the aux loss counts experts.
import { gradOf, needsGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, GradSink, gradSink } from '../cuda/mixed';
import { Device } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import { assertShape, kernels, sameDevice } from './kernels';

interface MoeKernels {
  moeRoute(logits: number, N: number, E: number, k: number, renorm: boolean, scores: number, weights: number,
    experts: number, offsets: number, order: number, positions: number): void;
  moeRouteBackward(dlogits: number, scores: number, weights: number, experts: number, dweights: number,
    dscores: number, N: number, E: number, k: number, renorm: boolean): void;
  moeAuxLoss(out: number, scores: number, coef: number, B: number, T: number, E: number): void;
  moeAuxLossBackward(dscores: number, dloss: number, coef: number, B: number, T: number, E: number): void;
  moeDispatch(out: number, x: number, order: number, N: number, k: number, C: number): void;
  moeDispatchBackward(dx: number, dout: number, positions: number, N: number, k: number, C: number): void;
  moeCombine(y: number, expertOut: number, weights: number, positions: number, N: number, k: number,
    C: number): void;
  moeCombineBackward(dexpertOut: number, dweights: number, dy: number, expertOut: number, weights: number,
    order: number, positions: number, N: number, k: number, C: number): void;
}

const k = (t: Tensor) => kernels<MoeKernels>(t.device);

/** Token and expert rows (and gate logits): f32 on the CPU, bf16 on cuda. */
const rowDtype = (device: Device) => (device === 'cuda' ? 'bf16' : 'f32');
/** A row tensor as the device's kernels read it. */
const rowInput = (t: Tensor) => (t.device === 'cuda' ? asBf16(t) : t);
/** Where a kernel accumulates t's row gradient: its gradient on the CPU; a bf16 sink on cuda. */
const rowGrad = (t: Tensor): GradSink => (t.device === 'cuda' ? gradSink(t, 'bf16') : { ptr: gradOf(t).ptr, finish: () => {} });

/** The largest top-k the kernels support (a fixed-size per-token buffer in native/cpu/moe.cc). */
export const MOE_MAX_TOP_K = 8;

export interface MoeRouting {
  /** [N, k] f32: the chosen experts' probabilities (renormalised when asked); autograd to gateLogits. */
  weights: Tensor;
  /** [N*k] chosen expert ids, row-major; each token's slots in descending probability (ties: lower id first). */
  experts: Int32Array;
  /** [N, E] f32: softmax probabilities; autograd to gateLogits. */
  scores: Tensor;
  /** Tokens (assignments) per expert. */
  counts: number[];
  /** E+1 prefix sums of counts: expert e's rows are offsets[e] .. offsets[e+1]-1 in sorted order. */
  offsets: number[];
  /** [N*k]: order[p] = assignment (token*k + slot) at sorted position p; stable (tokens ascend within an expert). */
  order: Int32Array;
  /** The same as `order`, as an i32 tensor on the routing's device, for the kernels. */
  orderTensor: Tensor;
  /** [N*k] i32 tensor, the inverse of order: positionTensor[token*k + slot] = that assignment's sorted position. */
  positionTensor: Tensor;
  /** k, E and N, for shape checks. */
  topK: number;
  numExperts: number;
  numTokens: number;
}

/**
 * The MiniMind gate after its linear layer: scores = softmax(gateLogits) over experts, the topK largest per
 * token, and, when normTopk and topK > 1 (MiniMind applies norm_topk_prob only for k > 1), weights divided by
 * (their sum + 1e-20). Then a stable sort of the assignments by expert.
 * Slots come in descending probability, and equal probabilities pick the lower expert id (as tf.math.top_k and
 * ONNX TopK specify). torch.topk documents no tie order (sorted=False not even a slot order; pytorch issues
 * #88184, #133542 show CPU results that are not the lower index), so exact ties may route differently from torch;
 * with continuous logits they do not occur in practice.
 */
export function moeRoute(gateLogits: Tensor, topK: number, normTopk: boolean): MoeRouting {
  assertFloat('moeRoute', gateLogits);
  if (gateLogits.ndim !== 2) throw new Error(`moeRoute: gateLogits must be [N, E], got ${gateLogits.describe()}`);
  const [N, E] = gateLogits.shape;
  if (!Number.isInteger(topK) || topK < 1 || topK > Math.min(E, MOE_MAX_TOP_K)) {
    throw new Error(`moeRoute: topK=${topK} must be an integer in [1, min(E=${E}, ${MOE_MAX_TOP_K})]`);
  }
  const device = gateLogits.device;
  const renorm = normTopk && topK > 1;
  const NK = N * topK;
  const scores = Tensor.empty([N, E], 'f32', device, false);
  const weights = Tensor.empty([N, topK], 'f32', device, false);
  // One i32 buffer [offsets | experts | order | positions], so the host needs one download of its first three.
  const ints = Tensor.empty([E + 1 + 3 * NK], 'i32', device, false);
  const offsetsTensor = ints.narrowView(0, E + 1);
  const expertsTensor = ints.narrowView(E + 1, NK);
  const orderTensor = ints.narrowView(E + 1 + NK, NK);
  const positionTensor = ints.narrowView(E + 1 + 2 * NK, NK);
  const logits = rowInput(gateLogits);
  k(gateLogits).moeRoute(logits.ptr, N, E, topK, renorm, scores.ptr, weights.ptr, expertsTensor.ptr,
    offsetsTensor.ptr, orderTensor.ptr, positionTensor.ptr);

  if (needsGrad(gateLogits)) {
    record([weights, scores], () => {
      const dlogits = rowGrad(gateLogits);
      k(gateLogits).moeRouteBackward(dlogits.ptr, scores.ptr, weights.ptr, expertsTensor.ptr,
        weights.grad?.ptr ?? 0, scores.grad?.ptr ?? 0, N, E, topK, renorm);
      dlogits.finish();
    });
  }

  const host = ints.narrowView(0, E + 1 + 2 * NK).toArray() as Int32Array;
  const offsets = Array.from(host.subarray(0, E + 1));
  return {
    weights,
    scores,
    experts: host.slice(E + 1, E + 1 + NK),
    counts: offsets.slice(1).map((end, e) => end - offsets[e]),
    offsets,
    order: host.slice(E + 1 + NK),
    orderTensor,
    positionTensor,
    topK,
    numExperts: E,
    numTokens: N,
  };
}

/**
 * MiniMind's auxiliary load-balancing loss (MoEGate.forward), a scalar with gradient into routing.scores; the
 * selection counts are constants, as in MiniMind. With N = B*T tokens and count = how often an expert was chosen:
 *   seqAux:  ce[b,e] = count_b[e] / (T*k/E),  P[b,e] = mean over t of scores[b,t,e],
 *            aux = alpha * mean over b of sum_e ce[b,e] * P[b,e]
 *   !seqAux: f[e] = E * count[e] / (N*k),  P[e] = mean over tokens of scores[:,e],  aux = alpha * sum_e f[e] * P[e]
 * Both are sum(coef[b,e] * scores[b,t,e]) with coef = alpha*ce/(B*T) (seqAux, per row b) or alpha*f/N (one row).
 */
export function moeAuxLoss(routing: MoeRouting, B: number, T: number, alpha: number, seqAux: boolean): Tensor {
  const { numTokens: N, numExperts: E, topK, experts, scores } = routing;
  if (!Number.isInteger(B) || !Number.isInteger(T) || B * T !== N) {
    throw new Error(`moeAuxLoss: B=${B} * T=${T} must equal the routing's N=${N} tokens`);
  }
  const rows = seqAux ? B : 1;
  const tokensPerRow = seqAux ? T : N;
  const coef = new Float32Array(rows * E);
  for (let a = 0; a < N * topK; a++) {
    const row = seqAux ? Math.floor(a / (T * topK)) : 0;
    coef[row * E + experts[a]] += 1;
  }
  for (let i = 0; i < coef.length; i++) {
    const count = coef[i];
    coef[i] = seqAux
      ? (alpha * (count / ((T * topK) / E))) / (B * T)
      : (alpha * (E * (count / (N * topK)))) / N;
  }
  const coefTensor = Tensor.from(coef, [rows, E], 'f32', scores.device);
  const out = Tensor.empty([], 'f32', scores.device, false);
  k(scores).moeAuxLoss(out.ptr, scores.ptr, coefTensor.ptr, rows, tokensPerRow, E);
  if (needsGrad(scores)) {
    record(out, () => {
      k(scores).moeAuxLossBackward(gradOf(scores).ptr, out.grad!.ptr, coefTensor.ptr, rows, tokensPerRow, E);
    });
  }
  return out;
}

/** Checks a [rows, C] row tensor (f32; on cuda f32 or bf16); returns C. */
function checkRows(op: string, t: Tensor, rows: number): number {
  assertFloat(op, t);
  if (t.ndim !== 2 || t.shape[0] !== rows) {
    throw new Error(`${op}: expected a [${rows}, C] tensor, got ${t.describe()}`);
  }
  return t.shape[1];
}

/** Gathers token rows into expert-sorted order: out[p] = x[order[p] / k]; backward sums each token's k rows. */
export function moeDispatch(x: Tensor, routing: MoeRouting): Tensor {
  const { numTokens: N, topK } = routing;
  const C = checkRows('moeDispatch', x, N);
  sameDevice('moeDispatch', x, routing.orderTensor);
  const out = Tensor.empty([N * topK, C], rowDtype(x.device), x.device, false);
  k(x).moeDispatch(out.ptr, rowInput(x).ptr, routing.orderTensor.ptr, N, topK, C);
  if (needsGrad(x)) {
    record(out, () => {
      const dx = rowGrad(x);
      k(x).moeDispatchBackward(dx.ptr, rowInput(out.grad!).ptr, routing.positionTensor.ptr, N, topK, C);
      dx.finish();
    });
  }
  return out;
}

/**
 * y[t] = sum over slots (in slot order) of weights[t,slot] * expertOut[position of (t,slot)]. Backward:
 * d expertOut[p] = weight * dy[token], d weights[t,slot] = dy[t] . expertOut[position].
 * (MiniMind's training path stores expert outputs in a float16 buffer before this sum; here they stay f32, or
 * bf16 on cuda.)
 */
export function moeCombine(expertOut: Tensor, routing: MoeRouting): Tensor {
  const { numTokens: N, topK, weights } = routing;
  const C = checkRows('moeCombine', expertOut, N * topK);
  sameDevice('moeCombine', expertOut, weights);
  assertShape('moeCombine', weights, [N, topK]);
  const rows = rowInput(expertOut);
  const y = Tensor.empty([N, C], rowDtype(expertOut.device), expertOut.device, false);
  k(expertOut).moeCombine(y.ptr, rows.ptr, weights.ptr, routing.positionTensor.ptr, N, topK, C);
  if (needsGrad(expertOut, weights)) {
    record(y, () => {
      const dexpertOut = expertOut.requiresGrad ? rowGrad(expertOut) : null;
      k(expertOut).moeCombineBackward(dexpertOut?.ptr ?? 0, weights.requiresGrad ? gradOf(weights).ptr : 0,
        rowInput(y.grad!).ptr, rows.ptr, weights.ptr, routing.orderTensor.ptr, routing.positionTensor.ptr, N, topK, C);
      dexpertOut?.finish();
    });
  }
  return y;
}
