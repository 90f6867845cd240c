// The model configuration, with MiniMind's LMConfig field names (config.json), the named configurations,
// and the derived sizes (head dim, FFN width, parameter count, context length).
import * as fs from 'node:fs';
import { readJsonObject } from '../util/fsutil';

import type { RopeScaling, RopeStyle } from '../ops/rope';

export type { RopeScaling, RopeStyle };

export interface LMConfig {
  dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  /** FFN width; null derives it from dim and multiple_of as MiniMind does. */
  hidden_dim: number | null;
  multiple_of: number;
  norm_eps: number;
  max_seq_len: number;
  rope_theta: number;
  /** 'interleaved': MiniMind v1's complex pairs; 'half': MiniMind2/Llama rotate-half. */
  rope_style: RopeStyle;
  /**
   * RoPE scaling for a context longer than max_seq_len (HF config.json's field; "rope_type" is read as "type"):
   * the context becomes floor(max_seq_len * factor). null: none.
   */
  rope_scaling: RopeScaling | null;
  use_moe: boolean;
  num_experts_per_tok: number;
  n_routed_experts: number;
  /** Number of shared experts (v1's `True` means one). */
  n_shared_experts: number;
  scoring_func: 'softmax';
  aux_loss_alpha: number;
  seq_aux: boolean;
  norm_topk_prob: boolean;
}

export const DEFAULT_CONFIG: LMConfig = {
  dim: 512,
  n_layers: 8,
  n_heads: 16,
  n_kv_heads: 8,
  vocab_size: 6400,
  hidden_dim: null,
  multiple_of: 64,
  norm_eps: 1e-5,
  max_seq_len: 512,
  rope_theta: 10000,
  rope_style: 'interleaved',
  rope_scaling: null,
  use_moe: false,
  num_experts_per_tok: 2,
  n_routed_experts: 4,
  n_shared_experts: 1,
  scoring_func: 'softmax',
  aux_loss_alpha: 0.01,
  seq_aux: true,
  norm_topk_prob: true,
};

export const NAMED_CONFIGS: Record<string, Partial<LMConfig>> = {
  'minimind-v1-small': { dim: 512, n_layers: 8 },
  'minimind-v1-moe': { dim: 512, n_layers: 8, use_moe: true },
  'minimind-v1': { dim: 768, n_layers: 16 },
  // Small enough that the embedded demo trains in minutes on 2 CPU cores.
  'demo-tiny': { dim: 256, n_layers: 4, n_heads: 8, n_kv_heads: 4, vocab_size: 2048, max_seq_len: 256 },
};

/** Fills defaults and validates; accepts v1's boolean n_shared_experts. */
export function resolveConfig(partial: Partial<LMConfig> & Record<string, unknown>, where = 'config'): LMConfig {
  const cfg = { ...DEFAULT_CONFIG } as LMConfig & Record<string, unknown>;
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined && value !== null && key in DEFAULT_CONFIG) cfg[key] = value;
  }
  if (partial.hidden_dim === null || partial.hidden_dim === undefined) cfg.hidden_dim = null;
  const shared = partial.n_shared_experts as unknown;
  if (shared === true) cfg.n_shared_experts = 1;
  else if (shared === false || shared === null) cfg.n_shared_experts = 0;
  const positiveInts: (keyof LMConfig)[] = ['dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size',
    'multiple_of', 'max_seq_len', 'num_experts_per_tok', 'n_routed_experts'];
  for (const key of positiveInts) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: field "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (cfg.dim % cfg.n_heads !== 0) throw new Error(`${where}: dim ${cfg.dim} is not a multiple of n_heads ${cfg.n_heads}`);
  if (cfg.n_heads % cfg.n_kv_heads !== 0) {
    throw new Error(`${where}: n_heads ${cfg.n_heads} is not a multiple of n_kv_heads ${cfg.n_kv_heads}`);
  }
  if ((cfg.dim / cfg.n_heads) % 2 !== 0) throw new Error(`${where}: head dim ${cfg.dim / cfg.n_heads} must be even for RoPE`);
  if (cfg.rope_style !== 'interleaved' && cfg.rope_style !== 'half') {
    throw new Error(`${where}: field "rope_style" must be "interleaved" or "half", got ${JSON.stringify(cfg.rope_style)}`);
  }
  cfg.rope_scaling = resolveRopeScaling(partial.rope_scaling, where);
  if (cfg.use_moe && cfg.num_experts_per_tok > cfg.n_routed_experts) {
    throw new Error(`${where}: num_experts_per_tok ${cfg.num_experts_per_tok} > n_routed_experts ${cfg.n_routed_experts}`);
  }
  return cfg;
}

/** Validates a rope_scaling value ({type | rope_type: "linear" | "yarn", factor ≥ 1}; other keys are ignored). */
export function resolveRopeScaling(value: unknown, where = 'config'): RopeScaling | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${where}: field "rope_scaling" must be an object {"type": "linear"|"yarn", "factor": F} or null`);
  }
  const v = value as Record<string, unknown>;
  const type = v.type ?? v.rope_type;
  if (type !== 'linear' && type !== 'yarn') {
    throw new Error(`${where}: rope_scaling.type must be "linear" or "yarn", got ${JSON.stringify(type)}`);
  }
  if (typeof v.factor !== 'number' || !Number.isFinite(v.factor) || v.factor < 1) {
    throw new Error(`${where}: rope_scaling.factor must be a number ≥ 1, got ${JSON.stringify(v.factor)}`);
  }
  return { type, factor: v.factor };
}

/** Tokens the model attends over: max_seq_len, times the RoPE scaling factor when set. */
export function contextLength(c: LMConfig): number {
  return c.rope_scaling ? Math.floor(c.max_seq_len * c.rope_scaling.factor) : c.max_seq_len;
}

/** The error for an input longer than the context (`what` says what and how long), naming the limit and the fix. */
export function contextError(c: LMConfig, what: string): Error {
  const limit = contextLength(c);
  const scaled = c.rope_scaling ? ` (max_seq_len ${c.max_seq_len} × ${c.rope_scaling.type} RoPE scaling ${c.rope_scaling.factor})` : ' (max_seq_len)';
  const hint = c.rope_scaling ? 'a larger --rope-factor' : 'RoPE scaling (--rope-scaling linear|yarn --rope-factor F)';
  return new Error(`${what}; the model's context is ${limit} tokens${scaled}. For longer text use ${hint}`);
}

/** A named configuration, or a config.json file with LMConfig field names. */
export function loadConfig(nameOrFile: string): LMConfig {
  const named = NAMED_CONFIGS[nameOrFile];
  if (named) return resolveConfig(named, nameOrFile);
  if (!fs.existsSync(nameOrFile)) {
    throw new Error(`unknown model config "${nameOrFile}": not one of ${Object.keys(NAMED_CONFIGS).join(', ')} ` +
      'and no such file');
  }
  return resolveConfig(readJsonObject(nameOrFile), nameOrFile);
}

export const headDim = (c: LMConfig) => c.dim / c.n_heads;

/** MiniMind's FFN width: multiple_of * ceil(int(2 * 4 * dim / 3) / multiple_of). */
export function ffnHidden(c: LMConfig): number {
  if (c.hidden_dim) return c.hidden_dim;
  const h = Math.floor((2 * 4 * c.dim) / 3);
  return c.multiple_of * Math.ceil(h / c.multiple_of);
}

/** Unique parameters (the tied embedding counted once). */
export function parameterCount(c: LMConfig): number {
  const hd = headDim(c);
  const attn = c.dim * c.n_heads * hd * 2 + c.dim * c.n_kv_heads * hd * 2;
  const ffn = 3 * c.dim * ffnHidden(c);
  const moe = c.use_moe ? (c.n_routed_experts + c.n_shared_experts) * ffn + c.n_routed_experts * c.dim : ffn;
  return c.n_layers * (attn + moe + 2 * c.dim) + c.vocab_size * c.dim + c.dim;
}

/** Parameters a token passes through (MoE: only its top-k routed experts), for FLOP and MFU estimates. */
export function activeParameterCount(c: LMConfig): number {
  const idleExperts = c.use_moe ? c.n_routed_experts - c.num_experts_per_tok : 0;
  return parameterCount(c) - c.n_layers * idleExperts * 3 * c.dim * ffnHidden(c);
}

/** The config.json a model folder holds. */
export function configJson(c: LMConfig): Record<string, unknown> {
  const { rope_scaling: scaling, ...rest } = c;
  return { model_type: 'minimind', ...rest, hidden_dim: ffnHidden(c), ...(scaling ? { rope_scaling: scaling } : {}) };
}
