// DPO (Direct Preference Optimization) with a frozen reference model, TRL's "sigmoid" loss:
//   L = −log σ( β · [ (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)) ] )
// log π(y|x) sums (or, with --dpo-logp mean, averages) the token log-probs over the answer tokens (mask = 1).
// The batch holds the chosen sequences in rows [0, P) and the rejected ones in rows [P, 2P).
import { gradOf, needsGrad, noGrad, record } from '../autograd/tape';
import { reshape } from '../ops/elementwise';
import { tokenLogProbs } from '../ops/loss';
import { MiniMind } from '../nn/model';
import { Tensor } from '../tensor/tensor';

export type LogpReduction = 'sum' | 'mean';

/** Per-row reduced log-probs from per-token log-probs [R*T] and the mask [R*T] (host arrays). */
export function rowLogps(tokenLogps: Float32Array, mask: Float32Array, R: number, T: number, mode: LogpReduction): Float64Array {
  const out = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      s += tokenLogps[r * T + t] * mask[r * T + t];
      n += mask[r * T + t];
    }
    out[r] = mode === 'mean' ? s / Math.max(n, 1) : s;
  }
  return out;
}

const logSigmoid = (z: number) => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * The DPO loss (mean over the P pairs) as an autograd op on the policy's per-token log-probs [2P*T].
 * refRows holds the reference model's reduced log-probs [2P] (no gradient).
 */
export function dpoLoss(policyTokenLogps: Tensor, mask: Float32Array, refRows: Float64Array, T: number, beta: number,
  mode: LogpReduction): { loss: Tensor; rewardAccuracy: number } {
  const R = refRows.length;
  const P = R / 2;
  const pol = rowLogps(policyTokenLogps.toArray() as Float32Array, mask, R, T, mode);
  let loss = 0;
  let correct = 0;
  const dz = new Float64Array(P); // dL/dz for each pair, z = β·margin
  for (let p = 0; p < P; p++) {
    const z = beta * ((pol[p] - refRows[p]) - (pol[P + p] - refRows[P + p]));
    loss -= logSigmoid(z) / P;
    dz[p] = -sigmoid(-z) / P;
    if (z > 0) correct++;
  }
  const out = Tensor.from([loss], [1], 'f32', policyTokenLogps.device);
  if (needsGrad(policyTokenLogps)) {
    record(out, () => {
      const g = out.grad!.item();
      const grad = new Float32Array(R * T);
      for (let r = 0; r < R; r++) {
        const p = r % P;
        const sign = r < P ? 1 : -1;
        let n = 0;
        for (let t = 0; t < T; t++) n += mask[r * T + t];
        const perToken = (g * dz[p] * beta * sign) / (mode === 'mean' ? Math.max(n, 1) : 1);
        for (let t = 0; t < T; t++) grad[r * T + t] = perToken * mask[r * T + t];
      }
      const gt = gradOf(policyTokenLogps);
      const prev = gt.toArray() as Float32Array;
      for (let i = 0; i < grad.length; i++) grad[i] += prev[i];
      gt.upload(grad);
    });
  }
  return { loss: out, rewardAccuracy: correct / P };
}

/** Per-token log-probs of y given x under a model: [R*T], with autograd when enabled. */
export function sequenceTokenLogps(model: MiniMind, x: Tensor, y: Tensor): Tensor {
  const [R, T] = x.shape;
  const logits = model.forward(x);
  return tokenLogProbs(reshape(logits, [R * T, model.cfg.vocab_size]), y.reshapeView([R * T]));
}

/** The reference model's reduced log-probs for a batch (no gradient). */
export function referenceRows(ref: MiniMind, x: Tensor, y: Tensor, mask: Float32Array, mode: LogpReduction): Float64Array {
  const [R, T] = x.shape;
  return noGrad(() => rowLogps(sequenceTokenLogps(ref, x, y).toArray() as Float32Array, mask, R, T, mode));
}
