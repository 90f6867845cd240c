// Autoregressive generation: prefill the prompt through the KV caches, then one token per step.
import { noGrad } from '../autograd/tape';
import { MiniMind } from '../nn/model';
import { resetStepArenas } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/random';
import { DEFAULT_SAMPLING, sampleToken, SamplingOptions } from './sampling';

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens: number;
  /** Stop after emitting one of these ids (not included in the output). */
  eosIds?: number[];
  seed?: number;
  /** false recomputes the whole sequence every step (a reference path for tests). */
  kvCache?: boolean;
  /** Called with each new id; return false to stop. */
  onToken?: (id: number) => boolean | void;
}

export interface GenerateResult {
  ids: number[];
  finishReason: 'stop' | 'length';
}

/** Last-position logits for `ids` at `offset` (caches hold positions < offset). */
function nextLogits(model: MiniMind, ids: number[], offset: number, caches: ReturnType<MiniMind['createCaches']> | null): Float32Array {
  const tokens = Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32', model.device);
  const logits = model.forward(tokens, { offset, caches, lastOnly: true }).toArray() as Float32Array;
  resetStepArenas();
  return logits;
}

export function generate(model: MiniMind, prompt: number[], opts: GenerateOptions): GenerateResult {
  if (prompt.length === 0) throw new Error('generate: the prompt is empty');
  const sampling: SamplingOptions = { ...DEFAULT_SAMPLING, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
  const maxLen = model.cfg.max_seq_len;
  if (prompt.length >= maxLen) {
    throw new Error(`the prompt has ${prompt.length} tokens; the model's context is ${maxLen} (max_seq_len)`);
  }
  const rng = new Rng(opts.seed ?? 0);
  const eos = new Set(opts.eosIds ?? []);
  const useCache = opts.kvCache ?? true;
  const caches = useCache ? model.createCaches(maxLen) : null;
  const all = [...prompt];
  const out: number[] = [];
  let finishReason: 'stop' | 'length' = 'length';
  try {
    noGrad(() => {
      let logits = nextLogits(model, prompt, 0, caches);
      while (out.length < opts.maxNewTokens) {
        const id = sampleToken(logits, sampling, rng, all);
        if (eos.has(id)) {
          finishReason = 'stop';
          break;
        }
        out.push(id);
        all.push(id);
        if (opts.onToken && opts.onToken(id) === false) {
          finishReason = 'stop';
          break;
        }
        if (out.length >= opts.maxNewTokens || all.length >= maxLen) break;
        logits = caches ? nextLogits(model, [id], all.length - 1, caches) : nextLogits(model, all, 0, null);
      }
    });
  } finally {
    caches?.forEach((c) => c.dispose());
  }
  return { ids: out, finishReason };
}
