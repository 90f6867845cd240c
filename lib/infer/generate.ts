// Autoregressive generation: prefill the prompt through preallocated KV caches, then one token per step.
// A Decoder yields one token per call, so callers can stream, await between tokens (the server) or stop early.
import { noGrad } from '../autograd/tape';
import { contextError, contextLength } from '../nn/config';
import { KVCache, MiniMind } from '../nn/model';
import { bf16ToF32 } from '../tensor/dtype';
import { resetStepArenas } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/random';
import { DEFAULT_SAMPLING, sampleToken, SamplingOptions } from './sampling';

/** Prompt positions per forward pass while prefilling (see Decoder.forward): 128 keeps prefill GEMMs efficient
 * (v1-small: 2600-2800 tokens/s, against ~1400 with 64); inference keeps one layer's activations (~5 MB). */
export const PREFILL_CHUNK = 128;

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens: number;
  /** Stop after one of these ids (not included in the output). */
  eosIds?: number[];
  seed?: number;
  /** false recomputes the whole sequence every step (a reference path for tests). */
  kvCache?: boolean;
  /** Called with each new id; return false to stop. */
  onToken?: (id: number) => boolean | void;
}

export type FinishReason = 'stop' | 'length';

export interface GenerateResult {
  ids: number[];
  finishReason: FinishReason;
}

export class Decoder {
  private readonly sampling: SamplingOptions;
  private readonly rng: Rng;
  private readonly eos: Set<number>;
  private readonly caches: KVCache[] | null;
  private readonly all: number[];
  private logits: Float32Array;
  readonly ids: number[] = [];
  finishReason: FinishReason | null = null;

  constructor(
    private readonly model: MiniMind,
    prompt: number[],
    private readonly opts: GenerateOptions,
  ) {
    if (prompt.length === 0) throw new Error('generate: the prompt is empty');
    const maxLen = contextLength(model.cfg);
    if (prompt.length >= maxLen) throw contextError(model.cfg, `the prompt has ${prompt.length} tokens, leaving no room to generate`);
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.sampling = { ...DEFAULT_SAMPLING, ...given };
    this.rng = new Rng(opts.seed ?? 0);
    this.eos = new Set(opts.eosIds ?? []);
    this.caches = (opts.kvCache ?? true) ? model.createCaches(maxLen) : null;
    this.all = [...prompt];
    this.logits = this.forward(prompt, 0);
  }

  /**
   * Last-position logits for `ids` placed at `offset` (the caches hold the positions before). With caches, a
   * long prompt runs in chunks of PREFILL_CHUNK positions, the step arena reset between them: the activations
   * of one chunk, not of the whole prompt, set the process's peak memory.
   */
  private forward(ids: number[], offset: number): Float32Array {
    const chunk = this.caches ? PREFILL_CHUNK : ids.length;
    let logits: Float32Array | null = null;
    for (let start = 0; start < ids.length; start += chunk) {
      const part = ids.slice(start, start + chunk);
      logits = noGrad(() => {
        const tokens = Tensor.from(Int32Array.from(part), [1, part.length], 'i32', this.model.device);
        const out = this.model.forward(tokens, { offset: offset + start, caches: this.caches, lastOnly: true });
        const values = out.toArray();
        return values instanceof Uint16Array ? bf16ToF32(values) : (values as Float32Array); // cuda: bf16 logits
      });
      resetStepArenas();
    }
    return logits!;
  }

  /** The next token id, or null when generation has finished (see finishReason). */
  next(): number | null {
    if (this.finishReason) return null;
    if (this.ids.length >= this.opts.maxNewTokens || this.all.length >= contextLength(this.model.cfg)) {
      this.finish('length');
      return null;
    }
    const id = sampleToken(this.logits, this.sampling, this.rng, this.all);
    if (this.eos.has(id)) {
      this.finish('stop');
      return null;
    }
    this.ids.push(id);
    this.all.push(id);
    if (this.ids.length < this.opts.maxNewTokens && this.all.length < contextLength(this.model.cfg)) {
      this.logits = this.caches ? this.forward([id], this.all.length - 1) : this.forward(this.all, 0);
    }
    return id;
  }

  /** Ends generation early (a stop string, a cancelled request) and frees the caches. */
  finish(reason: FinishReason): void {
    if (this.finishReason) return;
    this.finishReason = reason;
    this.caches?.forEach((c) => c.dispose());
  }
}

export function generate(model: MiniMind, prompt: number[], opts: GenerateOptions): GenerateResult {
  const d = new Decoder(model, prompt, opts);
  try {
    for (let id = d.next(); id !== null; id = d.next()) {
      if (opts.onToken && opts.onToken(id) === false) d.finish('stop');
    }
  } finally {
    d.finish('length');
  }
  return { ids: d.ids, finishReason: d.finishReason! };
}
