// Mean token loss and perplexity of a model over a data file, as MiniMind v1's pretraining data is read:
// the token stream (a uint16 .bin file, or jsonl/text tokenized as <s>doc</s> concatenations) is cut into
// non-overlapping windows of seqLen tokens; X = w[:-1], Y = w[1:]; targets with id 0 are ignored.
import { noGrad } from '../autograd/tape';
import { tokenLosses } from '../ops/loss';
import type { DataLoader } from '../data';
import { contextError, contextLength } from '../nn/config';
import { MiniMind } from '../nn/model';
import { resetStepArenas } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';

export interface LossReport {
  mean_loss: number;
  perplexity: number;
  tokens: number;
}

/** Evaluates windows of `tokens` in batches; `onProgress(done, total)` reports windows. */
export function evalTokenLoss(model: MiniMind, tokens: Uint16Array | Int32Array, seqLen: number, batchSize = 8,
  onProgress?: (done: number, total: number) => void): LossReport {
  if (seqLen < 2) throw new Error(`--seq-len must be at least 2, got ${seqLen}`);
  if (seqLen - 1 > contextLength(model.cfg)) throw contextError(model.cfg, `--seq-len ${seqLen} needs ${seqLen - 1} positions`);
  const windows = Math.floor(tokens.length / seqLen);
  if (windows === 0) throw new Error(`the data has ${tokens.length} tokens, fewer than one window of ${seqLen}`);
  const T = seqLen - 1;
  let sum = 0;
  let count = 0;
  noGrad(() => {
    for (let w0 = 0; w0 < windows; w0 += batchSize) {
      const B = Math.min(batchSize, windows - w0);
      const x = new Int32Array(B * T);
      const y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        const base = (w0 + b) * seqLen;
        for (let t = 0; t < T; t++) {
          x[b * T + t] = tokens[base + t];
          y[b * T + t] = tokens[base + t + 1];
        }
      }
      const logits = model.forward(Tensor.from(x, [B, T], 'i32'));
      const losses = tokenLosses(logits.reshapeView([B * T, model.cfg.vocab_size]), Tensor.from(y, [B * T], 'i32'));
      for (let i = 0; i < y.length; i++) {
        if (y[i] === 0) continue;
        sum += losses[i];
        count++;
      }
      resetStepArenas();
      onProgress?.(Math.min(w0 + B, windows), windows);
    }
  });
  const mean = count ? sum / count : NaN;
  return { mean_loss: mean, perplexity: Math.exp(mean), tokens: count };
}

/** Mean loss over the masked tokens of prepared SFT/DPO rows (assistant tokens only), one pass in order. */
export function evalMaskedLoss(model: MiniMind, loader: DataLoader): LossReport {
  let sum = 0;
  let count = 0;
  try {
    noGrad(() => {
      for (let b = 0; b < loader.batchesPerEpoch; b++) {
        const batch = loader.next();
        const R = batch.rows;
        const T = batch.seqLen;
        const logits = model.forward(Tensor.from(batch.x, [R, T], 'i32'));
        const losses = tokenLosses(logits.reshapeView([R * T, model.cfg.vocab_size]), Tensor.from(batch.y, [R * T], 'i32'));
        for (let i = 0; i < losses.length; i++) {
          if (batch.mask[i] === 0 || batch.y[i] === 0) continue;
          sum += losses[i];
          count++;
        }
        resetStepArenas();
      }
    });
  } finally {
    loader.close();
  }
  const mean = count ? sum / count : NaN;
  return { mean_loss: mean, perplexity: Math.exp(mean), tokens: count };
}
