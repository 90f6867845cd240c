// Hugging Face formats: exporting a model as a transformers Llama folder (LlamaForCausalLM: config.json,
// model.safetensors with Llama tensor names, tokenizer files), reading HF-style configs and tensor names on
// import, and the tokenizer files' special-token ids.
//
// Names (v1 → Llama), per layer i:  attention.wq/wk/wv/wo → self_attn.q/k/v/o_proj,  feed_forward.w1/w3/w2 →
// mlp.gate/up/down_proj,  attention_norm → input_layernorm,  ffn_norm → post_attention_layernorm;
// tok_embeddings → model.embed_tokens, norm → model.norm. The output head is tied (tie_word_embeddings true), and
// like save_pretrained with tied weights we write no lm_head.weight: transformers ties it to embed_tokens.
//
// RoPE: Llama rotates halves (x[j], x[j + hd/2]); MiniMind v1 rotates interleaved pairs (x[2j], x[2j+1]) with the
// same frequency θ^(-2j/hd). Reordering the rows of wq and wk inside each head, new row j ← old row 2j and new
// row hd/2 + j ← old row 2j + 1, makes q·k under rotate-half equal q·k under interleaved RoPE (scores are sums
// over pairs, and the pairs only move). So a v1 model (rope_style 'interleaved') is exported permuted; a
// rope_style 'half' model is written as is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { contextLength, ffnHidden, headDim, LMConfig, resolveConfig } from '../nn/config';
import { writeFileAtomic } from '../util/fsutil';
import { f32Bytes, SafeTensor, writeSafetensors } from './safetensors';
import { readJsonObject } from '../util/fsutil';
import { canonicalStateDict, saveStateDictFolder, StateDict } from './state-dict';

/** Reorders each head's rows from interleaved-pair order to rotate-half order (wq/wk: [heads·hd, dim]). */
export function interleavedToHalfRows(w: Float32Array, rows: number, cols: number, hd: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < rows / hd; h++) {
    for (let j = 0; j < hd / 2; j++) {
      out.set(w.subarray((h * hd + 2 * j) * cols, (h * hd + 2 * j + 1) * cols), (h * hd + j) * cols);
      out.set(w.subarray((h * hd + 2 * j + 1) * cols, (h * hd + 2 * j + 2) * cols), (h * hd + hd / 2 + j) * cols);
    }
  }
  return out;
}

/** The inverse of interleavedToHalfRows: rotate-half row order back to interleaved pairs. */
export function halfToInterleavedRows(w: Float32Array, rows: number, cols: number, hd: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < rows / hd; h++) {
    for (let j = 0; j < hd / 2; j++) {
      out.set(w.subarray((h * hd + j) * cols, (h * hd + j + 1) * cols), (h * hd + 2 * j) * cols);
      out.set(w.subarray((h * hd + hd / 2 + j) * cols, (h * hd + hd / 2 + j + 1) * cols), (h * hd + 2 * j + 1) * cols);
    }
  }
  return out;
}

/** v1 name → Llama name, as [v1 pattern, Llama pattern] with `{i}` for the layer. */
const LLAMA_NAMES: [string, string][] = [
  ['attention.wq.weight', 'self_attn.q_proj.weight'], ['attention.wk.weight', 'self_attn.k_proj.weight'],
  ['attention.wv.weight', 'self_attn.v_proj.weight'], ['attention.wo.weight', 'self_attn.o_proj.weight'],
  ['attention_norm.weight', 'input_layernorm.weight'], ['ffn_norm.weight', 'post_attention_layernorm.weight'],
  ['feed_forward.w1.weight', 'mlp.gate_proj.weight'], ['feed_forward.w3.weight', 'mlp.up_proj.weight'],
  ['feed_forward.w2.weight', 'mlp.down_proj.weight'],
];

/** A dense model's state dict under Llama names (rows of wq/wk permuted for an interleaved-RoPE model). */
export function toLlamaStateDict(cfg: LMConfig, sd: StateDict): StateDict {
  const { stateDict } = canonicalStateDict(cfg, sd, 'export');
  const hd = headDim(cfg);
  const out: StateDict = new Map([['model.embed_tokens.weight', stateDict.get('tok_embeddings.weight')!]]);
  for (let i = 0; i < cfg.n_layers; i++) {
    for (const [v1, llama] of LLAMA_NAMES) {
      let t = stateDict.get(`layers.${i}.${v1}`)!;
      if (cfg.rope_style === 'interleaved' && (v1 === 'attention.wq.weight' || v1 === 'attention.wk.weight')) {
        t = { shape: t.shape, data: interleavedToHalfRows(t.data, t.shape[0], t.shape[1], hd) };
      }
      out.set(`model.layers.${i}.${llama}`, t);
    }
  }
  out.set('model.norm.weight', stateDict.get('norm.weight')!);
  return out;
}

/**
 * Renames an HF-layout state dict (MiniMind2 ≥ 2025-04 or a Llama export) to v1 names. MoE layers map
 * mlp.experts.E.* / mlp.gate / mlp.shared_experts.S.* to feed_forward.*; a single shared expert loses its index.
 */
export function fromLlamaStateDict(sd: StateDict): StateDict {
  const singleShared = !sd.has('model.layers.0.mlp.shared_experts.1.gate_proj.weight');
  const proj: Record<string, string> = { gate_proj: 'w1', up_proj: 'w3', down_proj: 'w2', q_proj: 'wq', k_proj: 'wk', v_proj: 'wv', o_proj: 'wo' };
  const out: StateDict = new Map();
  for (const [name, t] of sd) {
    let n = name.replace(/^model\./, '');
    if (n === 'embed_tokens.weight') n = 'tok_embeddings.weight';
    else if (n === 'lm_head.weight') n = 'output.weight';
    n = n.replace('.self_attn.', '.attention.').replace('.input_layernorm.', '.attention_norm.')
      .replace('.post_attention_layernorm.', '.ffn_norm.').replace('.mlp.', '.feed_forward.')
      .replace(/\.(gate_proj|up_proj|down_proj|q_proj|k_proj|v_proj|o_proj)\./, (_, p: string) => `.${proj[p]}.`);
    if (singleShared) n = n.replace('.shared_experts.0.', '.shared_experts.');
    out.set(n, t);
  }
  return out;
}

/** True for HF-style configs (hidden_size, num_hidden_layers, ...) rather than LMConfig names. */
export const isHfConfig = (raw: Record<string, unknown>) => 'hidden_size' in raw && !('dim' in raw);

/** An LMConfig from HF-style config.json fields; HF-layout weights use rotate-half RoPE. */
export function configFromHf(raw: Record<string, unknown>, where: string): LMConfig {
  const pick = (...keys: string[]) => keys.map((k) => raw[k]).find((v) => v !== undefined && v !== null);
  return resolveConfig({
    dim: pick('hidden_size'), n_layers: pick('num_hidden_layers'), n_heads: pick('num_attention_heads'),
    n_kv_heads: pick('num_key_value_heads', 'num_attention_heads'), vocab_size: pick('vocab_size'),
    hidden_dim: pick('intermediate_size'), norm_eps: pick('rms_norm_eps'),
    // A scaled model's trained context is original_max_position_embeddings (see llamaConfig).
    max_seq_len: hfRopeScaling(raw)?.original_max_position_embeddings ?? pick('max_position_embeddings'),
    rope_scaling: hfRopeScaling(raw) ?? null, rope_theta: pick('rope_theta'), rope_style: 'half', use_moe: pick('use_moe'), num_experts_per_tok: pick('num_experts_per_tok'),
    n_routed_experts: pick('n_routed_experts'), n_shared_experts: pick('n_shared_experts'), aux_loss_alpha: pick('aux_loss_alpha'),
    seq_aux: pick('seq_aux'), norm_topk_prob: pick('norm_topk_prob'),
  } as Partial<LMConfig> & Record<string, unknown>, where);
}

export interface TokenizerInfo {
  /** tokenizer.json, parsed. */
  json: Record<string, unknown>;
  /** tokenizer_config.json, parsed ({} when absent). */
  config: Record<string, unknown>;
  bos: number | null;
  eos: number | null;
  unk: number | null;
}

/** Reads tokenizer.json (+ tokenizer_config.json) and resolves the bos/eos/unk tokens to ids. */
export function readTokenizerInfo(dir: string): TokenizerInfo {
  const jsonFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(jsonFile)) throw new Error(`${dir}: no tokenizer.json`);
  const json = readJsonObject(jsonFile);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? readJsonObject(configFile) : {};
  const ids = new Map<string, number>();
  const model = json.model as { vocab?: Record<string, number> } | undefined;
  for (const [tok, id] of Object.entries(model?.vocab ?? {})) ids.set(tok, id);
  for (const a of (json.added_tokens ?? []) as { id: number; content: string }[]) ids.set(a.content, a.id);
  const idOf = (field: string) => {
    const v = config[field] as string | { content?: string } | null | undefined;
    const text = typeof v === 'string' ? v : v?.content;
    if (text === undefined) return null;
    const id = ids.get(text);
    if (id === undefined) throw new Error(`${configFile}: ${field} ${JSON.stringify(text)} is not in ${jsonFile}`);
    return id;
  };
  return { json, config, bos: idOf('bos_token'), eos: idOf('eos_token'), unk: idOf('unk_token') };
}

function hfRopeScaling(raw: Record<string, unknown>): Record<string, unknown> | null {
  const v = raw.rope_scaling;
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
}

/**
 * The config.json of a transformers LlamaForCausalLM with these sizes. A RoPE-scaled model is written as
 * transformers reads one: rope_scaling {rope_type, factor, original_max_position_embeddings: the trained
 * context} and max_position_embeddings the scaled context.
 */
export function llamaConfig(cfg: LMConfig, tok: { bos: number | null; eos: number | null }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: cfg.dim, intermediate_size: ffnHidden(cfg),
    num_attention_heads: cfg.n_heads, num_key_value_heads: cfg.n_kv_heads, num_hidden_layers: cfg.n_layers,
    head_dim: headDim(cfg), hidden_act: 'silu', rms_norm_eps: cfg.norm_eps, rope_theta: cfg.rope_theta,
    rope_scaling: cfg.rope_scaling ? { rope_type: cfg.rope_scaling.type, factor: cfg.rope_scaling.factor,
      original_max_position_embeddings: cfg.max_seq_len } : null,
    max_position_embeddings: contextLength(cfg), vocab_size: cfg.vocab_size, tie_word_embeddings: true,
    attention_bias: false, mlp_bias: false, attention_dropout: 0.0, initializer_range: 0.02, pretraining_tp: 1,
    use_cache: true, torch_dtype: 'float32', bos_token_id: tok.bos, eos_token_id: tok.eos,
  };
}

/**
 * Copies tokenizer.json and tokenizer_config.json. The v1 tokenizer_config.json says add_prefix_space true
 * while tokenizer.json's ByteLevel pre-tokenizer (what v1 trained with) says false; transformers ≥ 4.48 applies
 * the config's value and would change the ids, so the copy takes tokenizer.json's value.
 */
function copyHfTokenizer(tokenizerDir: string, outDir: string, tok: TokenizerInfo): void {
  writeFileAtomic(path.join(outDir, 'tokenizer.json'), fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json')));
  const configFile = path.join(tokenizerDir, 'tokenizer_config.json');
  if (!fs.existsSync(configFile)) return;
  let text = fs.readFileSync(configFile, 'utf8');
  const pre = tok.json.pre_tokenizer as { add_prefix_space?: boolean } | null;
  if (typeof pre?.add_prefix_space === 'boolean' && typeof tok.config.add_prefix_space === 'boolean') {
    // a textual edit keeps every other byte (e.g. the huge model_max_length integer) as it was
    text = text.replace(/("add_prefix_space"\s*:\s*)(true|false)/, `$1${pre.add_prefix_space}`);
  }
  writeFileAtomic(path.join(outDir, 'tokenizer_config.json'), text);
}

/**
 * Exports to `outDir`. Dense models: a transformers Llama folder (config.json, generation_config.json,
 * model.safetensors, tokenizer files). MoE models: transformers' Llama has no MiniMind MoE (one unweighted shared
 * expert), so they are written in minimind-native's own folder format (config.json with LMConfig fields incl.
 * use_moe/n_routed_experts/..., model.safetensors under MiniMind v1 names), which minimind-native loads, and
 * upstream MiniMind v1's model.py loads with `Transformer(LMConfig(**cfg)).load_state_dict(load_file(...))`.
 * Returns notes for the user.
 */
export function exportHf(cfg: LMConfig, sd: StateDict, tokenizerDir: string | null, outDir: string): string[] {
  if (cfg.use_moe) {
    saveStateDictFolder(cfg, sd, outDir, tokenizerDir);
    return ['MoE model: written as a minimind-native model folder (MiniMind v1 tensor names + LMConfig config.json); ' +
      'transformers LlamaForCausalLM cannot represent its shared-expert MoE'];
  }
  const notes: string[] = [];
  const tok = tokenizerDir ? readTokenizerInfo(tokenizerDir) : { bos: null, eos: null, json: {}, config: {}, unk: null };
  if (!tokenizerDir) notes.push('no tokenizer files next to the model: bos/eos ids are left null and no tokenizer is copied');
  const llama = toLlamaStateDict(cfg, sd);
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'config.json'), JSON.stringify(llamaConfig(cfg, tok), null, 2) + '\n');
  writeFileAtomic(path.join(outDir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: tok.bos, eos_token_id: tok.eos }, null, 2) + '\n');
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of llama) tensors.set(name, { dtype: 'F32', shape: t.shape, data: f32Bytes(t.data) });
  // transformers only loads safetensors whose metadata says format "pt"
  writeSafetensors(path.join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
  if (tokenizerDir) copyHfTokenizer(tokenizerDir, outDir, tok as TokenizerInfo);
  if (cfg.rope_style === 'interleaved') notes.push('wq/wk rows permuted inside each head for rotate-half RoPE');
  return notes;
}
