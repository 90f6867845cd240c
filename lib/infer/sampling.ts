// Choosing the next token from logits [V]: repetition penalty, temperature, top-k, top-p, seeded sampling.
// Temperature 0 is greedy (argmax; ties go to the lowest id, as torch.argmax).
import { Rng } from '../util/random';

export interface SamplingOptions {
  temperature: number;
  topK: number; // 0 = off
  topP: number; // 1 = off
  repetitionPenalty: number; // 1 = off
  /** 'signed' divides positive logits and multiplies negative ones (correct); 'divide' is MiniMind v1's form. */
  penaltyForm: 'signed' | 'divide';
}

export const DEFAULT_SAMPLING: SamplingOptions = { temperature: 0.7, topK: 0, topP: 1, repetitionPenalty: 1, penaltyForm: 'signed' };

export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number, form: 'signed' | 'divide'): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    const v = logits[id];
    logits[id] = form === 'divide' || v > 0 ? v / penalty : v * penalty;
  }
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Picks a token id; `logits` is modified in place. */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng, seen: number[]): number {
  applyRepetitionPenalty(logits, seen, opts.repetitionPenalty, opts.penaltyForm);
  if (opts.temperature <= 0) return argmax(logits);
  // Candidates sorted by logit, cut by top-k, then softmax with temperature, then cut by top-p.
  let ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (opts.topK > 0) ids = ids.slice(0, opts.topK);
  const maxLogit = logits[ids[0]];
  let probs = ids.map((id) => Math.exp((logits[id] - maxLogit) / opts.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  if (opts.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && cum < opts.topP) cum += probs[keep++];
    ids = ids.slice(0, Math.max(1, keep));
    probs = probs.slice(0, ids.length);
    sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
  }
  let r = rng.next();
  for (let i = 0; i < ids.length; i++) {
    r -= probs[i];
    if (r < 0) return ids[i];
  }
  return ids[ids.length - 1];
}
