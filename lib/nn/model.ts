// The MiniMind model (v1 architecture, MiniMind2 RoPE as an option), module by module as the paper reads:
//
//   tokens [B, T] -> Embedding -> n_layers x Block -> RMSNorm -> output (tied to the embedding) -> logits [B, T, V]
//   Block:      h = x + Attention(RMSNorm(x));  out = h + FeedForward(RMSNorm(h))   (or MoE instead of FeedForward)
//   Attention:  q, k, v = x Wqᵀ, x Wkᵀ, x Wvᵀ; RoPE on q, k; causal softmax(q kᵀ / √HD) v with GQA; then Woᵀ
//   FeedForward (SwiGLU): W2( silu(W1 x) * (W3 x) )
//   MoE:        softmax gate, top-k experts (renormalised), each a FeedForward; plus shared experts, unweighted
//
// Shapes: B batch, T sequence, C = dim, NH query heads, NKV key/value heads, HD = C / NH, V vocabulary.
// Parameters are persistent tensors named exactly as MiniMind v1's state_dict.
import { isGradEnabled, onBackward } from '../autograd/tape';
import { releaseWorkingCopies } from '../cuda/mixed';
import { attention } from '../ops/attention';
import { add, reshape, scale as scaleOp } from '../ops/elementwise';
import { embedding } from '../ops/embedding';
import { linear } from '../ops/gemm';
import { crossEntropy } from '../ops/loss';
import { moeAuxLoss, moeCombine, moeDispatch, moeRoute } from '../ops/moe';
import { rmsnorm } from '../ops/norm';
import { concatRows, lastRow, sliceRows } from '../ops/rows';
import { disposeRopeTable, rope, RopeScaling, ropeTable, RopeTable } from '../ops/rope';
import { swiglu } from '../ops/swiglu';
import { DType, Device } from '../tensor/dtype';
import { stepArena } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import { contextError, contextLength, ffnHidden, headDim, LMConfig, resolveRopeScaling } from './config';

/**
 * Named persistent parameters, in state_dict order. Matrices may be kept in bf16 or f16 for inference
 * (lib/infer/weights.ts; no gradient then); vectors (norm weights) are always f32.
 */
export class ParameterStore {
  readonly tensors = new Map<string, Tensor>();

  constructor(readonly device: Device, readonly matrixDtype: DType = 'f32') {}

  create(name: string, shape: number[]): Tensor {
    if (this.tensors.has(name)) throw new Error(`parameter ${name} defined twice`);
    const dtype = shape.length === 2 ? this.matrixDtype : 'f32';
    const t = Tensor.persistent(shape, dtype, this.device);
    t.name = name;
    t.requiresGrad = dtype === 'f32';
    this.tensors.set(name, t);
    return t;
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  dispose(): void {
    releaseWorkingCopies(this.tensors.values()); // cuda: the bf16 copies the kernels read
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/** A low-rank adapter on a linear layer: y += scale * (x Aᵀ) Bᵀ, A [r, in], B [out, r]. */
export interface LoraAdapter {
  A: Tensor;
  B: Tensor;
  scale: number;
}

/** A bias-free linear layer, weight [out, in] (nn.Linear layout), with an optional LoRA adapter. */
export class Linear {
  lora: LoraAdapter | null = null;

  constructor(readonly weight: Tensor) {}

  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight);
    if (!this.lora) return y;
    const { A, B, scale } = this.lora;
    const low = linear(linear(x, A), B);
    return add(y, scale === 1 ? low : scaleOp(low, scale));
  }
}

export class RMSNorm {
  constructor(
    readonly weight: Tensor,
    readonly eps: number,
  ) {}

  forward(x: Tensor): Tensor {
    return rmsnorm(x, this.weight, this.eps);
  }
}

/**
 * Preallocated keys and values of one attention layer for one sequence (post-RoPE, before GQA repeat), in the
 * activations' dtype: f32 on the CPU, bf16 on cuda.
 */
export class KVCache {
  readonly k: Tensor;
  readonly v: Tensor;
  /** Positions filled so far. */
  length = 0;

  constructor(readonly maxLen: number, nkv: number, hd: number, device: Device) {
    const dtype = device === 'cuda' ? 'bf16' : 'f32';
    this.k = Tensor.persistent([maxLen, nkv, hd], dtype, device);
    this.v = Tensor.persistent([maxLen, nkv, hd], dtype, device);
  }

  /** Appends k, v [1, T, NKV, HD] at the current length and returns views of everything so far. */
  append(k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const T = k.shape[1];
    if (this.length + T > this.maxLen) {
      throw new Error(`context of ${this.length + T} tokens exceeds the KV cache (${this.maxLen} positions)`);
    }
    this.k.narrowView(this.length, T).copyFrom(k.reshapeView(k.shape.slice(1)));
    this.v.narrowView(this.length, T).copyFrom(v.reshapeView(v.shape.slice(1)));
    this.length += T;
    const shape = [1, this.length, ...this.k.shape.slice(1)];
    return { k: this.k.narrowView(0, this.length).reshapeView(shape), v: this.v.narrowView(0, this.length).reshapeView(shape) };
  }

  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
}

export class Attention {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;

  constructor(
    readonly cfg: LMConfig,
    params: ParameterStore,
    prefix: string,
  ) {
    const hd = headDim(cfg);
    this.wq = new Linear(params.create(`${prefix}.wq.weight`, [cfg.n_heads * hd, cfg.dim]));
    this.wk = new Linear(params.create(`${prefix}.wk.weight`, [cfg.n_kv_heads * hd, cfg.dim]));
    this.wv = new Linear(params.create(`${prefix}.wv.weight`, [cfg.n_kv_heads * hd, cfg.dim]));
    this.wo = new Linear(params.create(`${prefix}.wo.weight`, [cfg.dim, cfg.n_heads * hd]));
  }

  /** x [B, T, C] at positions offset..offset+T-1; with a cache (B = 1) keys/values accumulate across calls. */
  forward(x: Tensor, table: RopeTable, offset: number, cache: KVCache | null): Tensor {
    const [B, T] = x.shape;
    const { n_heads: nh, n_kv_heads: nkv, rope_style: style } = this.cfg;
    const hd = headDim(this.cfg);
    const q = rope(reshape(this.wq.forward(x), [B, T, nh, hd]), table, style, offset);
    let k = rope(reshape(this.wk.forward(x), [B, T, nkv, hd]), table, style, offset);
    let v = reshape(this.wv.forward(x), [B, T, nkv, hd]);
    if (cache) ({ k, v } = cache.append(k, v));
    const o = attention(q, k, v, { causal: true });
    return this.wo.forward(reshape(o, [B, T, nh * hd]));
  }
}

export class FeedForward {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly w3: Linear;

  constructor(cfg: LMConfig, params: ParameterStore, prefix: string) {
    const hidden = ffnHidden(cfg);
    this.w1 = new Linear(params.create(`${prefix}.w1.weight`, [hidden, cfg.dim]));
    this.w2 = new Linear(params.create(`${prefix}.w2.weight`, [cfg.dim, hidden]));
    this.w3 = new Linear(params.create(`${prefix}.w3.weight`, [hidden, cfg.dim]));
  }

  forward(x: Tensor): Tensor {
    return this.w2.forward(swiglu(this.w1.forward(x), this.w3.forward(x)));
  }
}

/** Mixture of experts: routed FeedForwards chosen per token by a softmax gate, plus shared experts. */
export class MoE {
  readonly gate: Tensor;
  readonly experts: FeedForward[] = [];
  readonly shared: FeedForward[] = [];
  /** The auxiliary load-balancing loss of the last training forward (null when disabled). */
  auxLoss: Tensor | null = null;

  constructor(
    readonly cfg: LMConfig,
    params: ParameterStore,
    prefix: string,
  ) {
    for (let e = 0; e < cfg.n_routed_experts; e++) this.experts.push(new FeedForward(cfg, params, `${prefix}.experts.${e}`));
    this.gate = params.create(`${prefix}.gate.weight`, [cfg.n_routed_experts, cfg.dim]);
    // v1 has exactly one shared expert, named without an index.
    if (cfg.n_shared_experts === 1) this.shared.push(new FeedForward(cfg, params, `${prefix}.shared_experts`));
    else for (let s = 0; s < cfg.n_shared_experts; s++) this.shared.push(new FeedForward(cfg, params, `${prefix}.shared_experts.${s}`));
  }

  /** x [B, T, C]; withAux computes MiniMind's auxiliary loss (stored in auxLoss). */
  forward(x: Tensor, withAux: boolean): Tensor {
    const [B, T, C] = x.shape;
    const flat = reshape(x, [B * T, C]);
    const routing = moeRoute(linear(flat, this.gate), this.cfg.num_experts_per_tok, this.cfg.norm_topk_prob);
    this.auxLoss = withAux && this.cfg.aux_loss_alpha > 0
      ? moeAuxLoss(routing, B, T, this.cfg.aux_loss_alpha, this.cfg.seq_aux) : null;
    // Rows sorted by expert: each expert runs once on its contiguous slice.
    const sorted = moeDispatch(flat, routing);
    const outs: Tensor[] = [];
    for (let e = 0; e < this.experts.length; e++) {
      const count = routing.counts[e];
      if (count > 0) outs.push(this.experts[e].forward(sliceRows(sorted, routing.offsets[e], count)));
    }
    let y = moeCombine(concatRows(outs, sorted.shape[0], C, x.device), routing);
    for (const s of this.shared) y = add(y, s.forward(flat));
    return reshape(y, [B, T, C]);
  }
}

export class Block {
  readonly attentionNorm: RMSNorm;
  readonly ffnNorm: RMSNorm;
  readonly attention: Attention;
  readonly feedForward: FeedForward | MoE;

  constructor(cfg: LMConfig, params: ParameterStore, i: number) {
    const p = `layers.${i}`;
    this.attention = new Attention(cfg, params, `${p}.attention`);
    this.attentionNorm = new RMSNorm(params.create(`${p}.attention_norm.weight`, [cfg.dim]), cfg.norm_eps);
    this.ffnNorm = new RMSNorm(params.create(`${p}.ffn_norm.weight`, [cfg.dim]), cfg.norm_eps);
    this.feedForward = cfg.use_moe ? new MoE(cfg, params, `${p}.feed_forward`) : new FeedForward(cfg, params, `${p}.feed_forward`);
  }

  forward(x: Tensor, table: RopeTable, offset: number, cache: KVCache | null, withAux: boolean): Tensor {
    const h = add(x, this.attention.forward(this.attentionNorm.forward(x), table, offset, cache));
    const normed = this.ffnNorm.forward(h);
    const ffn = this.feedForward instanceof MoE ? this.feedForward.forward(normed, withAux) : this.feedForward.forward(normed);
    return add(h, ffn);
  }
}

/**
 * Told where each layer starts in a recorded forward pass, then when the backward pass has gone past it (so
 * that the gradients of the layer's parameters are complete): data-parallel training averages them then.
 */
export interface LayerBackwardHook {
  recorded(layer: number): void;
  reached(layer: number): void;
}

export interface ForwardOptions {
  /** Position of the first token (decoding with a KV cache). */
  offset?: number;
  /** One cache per layer (batch 1), from model.createCaches(). */
  caches?: KVCache[] | null;
  /** Only the last position's logits ([B, 1, V]), as MiniMind does without targets. */
  lastOnly?: boolean;
  /** Compute the MoE auxiliary loss (training with --aux-loss). */
  withAux?: boolean;
}

export class MiniMind {
  readonly params: ParameterStore;
  readonly tokEmbeddings: Tensor;
  readonly layers: Block[] = [];
  readonly norm: RMSNorm;
  /** cos/sin for the whole context (contextLength(cfg) positions). */
  rope: RopeTable;
  /** Set by data-parallel training for the backward passes whose gradients it averages layer by layer. */
  layerBackwardHook: LayerBackwardHook | null = null;

  constructor(
    public cfg: LMConfig,
    readonly device: Device = 'cpu',
    matrixDtype: DType = 'f32',
  ) {
    // The attention kernels tile the head dimension by 16 (MiniMind uses 32 and 48).
    const hd = headDim(cfg);
    if (hd % 16 !== 0 || hd > 128) throw new Error(`model: head dim dim/n_heads = ${hd} must be a multiple of 16, at most 128`);
    this.params = new ParameterStore(device, matrixDtype);
    this.tokEmbeddings = this.params.create('tok_embeddings.weight', [cfg.vocab_size, cfg.dim]);
    for (let i = 0; i < cfg.n_layers; i++) this.layers.push(new Block(cfg, this.params, i));
    this.norm = new RMSNorm(this.params.create('norm.weight', [cfg.dim]), cfg.norm_eps);
    this.rope = ropeTable(contextLength(cfg), headDim(cfg), cfg.rope_theta, cfg.rope_scaling, cfg.max_seq_len);
  }

  /** Switches RoPE scaling (null: none) after loading: the context becomes contextLength(cfg). */
  setRopeScaling(scaling: RopeScaling | null): void {
    const cfg = { ...this.cfg, rope_scaling: resolveRopeScaling(scaling, 'RoPE scaling') };
    const table = ropeTable(contextLength(cfg), headDim(cfg), cfg.rope_theta, cfg.rope_scaling, cfg.max_seq_len);
    disposeRopeTable(this.rope);
    this.rope = table;
    this.cfg = cfg;
  }

  /** The output projection is the embedding matrix itself (weight tying). */
  get output(): Tensor {
    return this.tokEmbeddings;
  }

  /** Every trainable tensor once (the tied output is the embedding). */
  parameters(): Tensor[] {
    return [...this.params.tensors.values()];
  }

  /** tokens: i32 [B, T] → logits [B, T, V] (or [B, 1, V] with lastOnly). */
  forward(tokens: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, T] = tokens.shape;
    const offset = opts.offset ?? 0;
    if (offset + T > contextLength(this.cfg)) throw contextError(this.cfg, `a sequence of ${offset + T} tokens`);
    // Inference keeps no activations for a backward pass: once a layer is done only its output is live, so the
    // arena drops everything since `mark` but that output, and one layer's activations, not all, set the memory.
    const mark = isGradEnabled() ? null : stepArena(this.device).mark();
    let x = embedding(tokens, this.tokEmbeddings);
    for (let i = 0; i < this.layers.length; i++) {
      const hook = this.layerBackwardHook;
      if (hook && isGradEnabled()) {
        hook.recorded(i);
        onBackward(() => hook.reached(i));
      }
      x = this.layers[i].forward(x, this.rope, offset, opts.caches ? opts.caches[i] : null, opts.withAux ?? false);
      x = x.keepOnlySince(mark);
    }
    if (opts.lastOnly) x = lastRow(x);
    return linear(this.norm.forward(x), this.output);
  }

  /** MoE auxiliary losses of the last forward, summed (null when none). */
  auxLoss(): Tensor | null {
    let total: Tensor | null = null;
    for (const l of this.layers) {
      const aux = l.feedForward instanceof MoE ? l.feedForward.auxLoss : null;
      if (aux) total = total ? add(total, aux) : aux;
    }
    return total;
  }

  /**
   * Mean masked next-token loss as MiniMind trains: targets are already shifted (Y = ids[1:]); id 0 is ignored;
   * mask (f32 [B, T]) weights tokens (pretrain: non-pad; SFT: answer tokens).
   */
  loss(tokens: Tensor, targets: Tensor, mask: Tensor | null, withAux = false): Tensor {
    const [B, T] = tokens.shape;
    const logits = this.forward(tokens, { withAux });
    const V = this.cfg.vocab_size;
    const loss = crossEntropy(reshape(logits, [B * T, V]), targets.reshapeView([B * T]), {
      ignoreIndex: 0,
      mask: mask ? mask.reshapeView([B * T]) : undefined,
    });
    const aux = withAux ? this.auxLoss() : null;
    return aux ? add(loss, reshape(aux, loss.shape)) : loss;
  }

  /** Every linear layer of the blocks with its kind (wq, wk, wv, wo, w1, w2, w3), experts included. */
  linearLayers(): [string, Linear][] {
    const found: [string, Linear][] = [];
    for (const block of this.layers) {
      const a = block.attention;
      found.push(['wq', a.wq], ['wk', a.wk], ['wv', a.wv], ['wo', a.wo]);
      const ffns = block.feedForward instanceof MoE ? [...block.feedForward.experts, ...block.feedForward.shared] : [block.feedForward];
      for (const f of ffns) found.push(['w1', f.w1], ['w2', f.w2], ['w3', f.w3]);
    }
    return found;
  }

  createCaches(maxLen = contextLength(this.cfg)): KVCache[] {
    return this.layers.map(() => new KVCache(maxLen, this.cfg.n_kv_heads, headDim(this.cfg), this.device));
  }

  dispose(): void {
    for (const [, layer] of this.linearLayers()) {
      if (!layer.lora) continue;
      const { A, B } = layer.lora;
      releaseWorkingCopies([A, B]);
      A.dispose();
      B.dispose();
      layer.lora = null;
    }
    this.params.dispose();
    disposeRopeTable(this.rope);
  }
}
