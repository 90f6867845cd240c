// State dicts as plain data, for the importers and exporters: name → { shape, data: Float32Array }, with
// MiniMind v1's tensor names in the order v1's state_dict() emits them (see v1TensorShapes). Nothing here
// builds a MiniMind, so conversions run without the native kernels. (The folder helpers at the end are
// model-folder.ts's, kept here so that this file does not import the model and its ops.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configJson, ffnHidden, headDim, LMConfig, resolveConfig } from '../nn/config';
import { readJsonObject, writeFileAtomic } from '../util/fsutil';
import { bytesToF32, f32Bytes, readSafetensors, SafeTensor, writeSafetensors } from './safetensors';

export interface F32Tensor {
  shape: number[];
  data: Float32Array;
}
export type StateDict = Map<string, F32Tensor>;

/** A hook applied to a state dict before it is exported (e.g. merging LoRA adapters into the weights). */
export type StateDictTransform = (cfg: LMConfig, stateDict: StateDict) => StateDict;

/** The FFN tensors of one SwiGLU feed-forward: w1 = gate (hidden×dim), w2 = down (dim×hidden), w3 = up. */
function ffnShapes(prefix: string, cfg: LMConfig): [string, number[]][] {
  const hidden = ffnHidden(cfg);
  return [[`${prefix}.w1.weight`, [hidden, cfg.dim]], [`${prefix}.w2.weight`, [cfg.dim, hidden]],
    [`${prefix}.w3.weight`, [hidden, cfg.dim]]];
}

/**
 * Every tensor of the v1 state_dict with its shape, in emission order: tok_embeddings; per layer wq, wk, wv,
 * wo, attention_norm, ffn_norm, then the FFN (or the MoE experts, gate, shared experts); norm; output (tied).
 */
export function v1TensorShapes(cfg: LMConfig): [string, number[]][] {
  const hd = headDim(cfg);
  const out: [string, number[]][] = [['tok_embeddings.weight', [cfg.vocab_size, cfg.dim]]];
  for (let i = 0; i < cfg.n_layers; i++) {
    const p = `layers.${i}`;
    out.push([`${p}.attention.wq.weight`, [cfg.n_heads * hd, cfg.dim]], [`${p}.attention.wk.weight`, [cfg.n_kv_heads * hd, cfg.dim]],
      [`${p}.attention.wv.weight`, [cfg.n_kv_heads * hd, cfg.dim]], [`${p}.attention.wo.weight`, [cfg.dim, cfg.n_heads * hd]],
      [`${p}.attention_norm.weight`, [cfg.dim]], [`${p}.ffn_norm.weight`, [cfg.dim]]);
    if (!cfg.use_moe) {
      out.push(...ffnShapes(`${p}.feed_forward`, cfg));
      continue;
    }
    for (let e = 0; e < cfg.n_routed_experts; e++) out.push(...ffnShapes(`${p}.feed_forward.experts.${e}`, cfg));
    out.push([`${p}.feed_forward.gate.weight`, [cfg.n_routed_experts, cfg.dim]]);
    // v1 has exactly one shared expert, named without an index.
    if (cfg.n_shared_experts === 1) out.push(...ffnShapes(`${p}.feed_forward.shared_experts`, cfg));
    else for (let s = 0; s < cfg.n_shared_experts; s++) out.push(...ffnShapes(`${p}.feed_forward.shared_experts.${s}`, cfg));
  }
  out.push(['norm.weight', [cfg.dim]], ['output.weight', [cfg.vocab_size, cfg.dim]]);
  return out;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Checks a state dict against the config and returns it in v1 order with both tied keys (either
 * tok_embeddings.weight or output.weight may stand in for the other), plus the names it ignored.
 */
export function canonicalStateDict(cfg: LMConfig, sd: StateDict, source: string): { stateDict: StateDict; ignored: string[] } {
  const out: StateDict = new Map();
  for (const [name, shape] of v1TensorShapes(cfg)) {
    const t = sd.get(name) ?? (name === 'tok_embeddings.weight' ? sd.get('output.weight')
      : name === 'output.weight' ? out.get('tok_embeddings.weight') : undefined);
    if (!t) throw new Error(`${source}: missing tensor ${name} (expected shape [${shape}])`);
    if (!sameShape(t.shape, shape)) throw new Error(`${source}: tensor ${name} has shape [${t.shape}], the config expects [${shape}]`);
    out.set(name, t);
  }
  return { stateDict: out, ignored: [...sd.keys()].filter((k) => !out.has(k)) };
}

/**
 * Reads dim, n_layers, vocab, FFN width, kv heads and the MoE layout off the tensor shapes of a v1 state dict.
 * n_heads cannot be seen in the shapes (wq is square); it comes from `base`.
 */
export function inferConfig(sd: StateDict, base: LMConfig, source: string): { cfg: LMConfig; notes: string[] } {
  const embed = sd.get('tok_embeddings.weight') ?? sd.get('output.weight');
  if (!embed || embed.shape.length !== 2) throw new Error(`${source}: no tok_embeddings.weight to infer the config from`);
  const [vocab, dim] = embed.shape;
  let nLayers = 0;
  for (const name of sd.keys()) {
    const m = /^layers\.(\d+)\./.exec(name);
    if (m) nLayers = Math.max(nLayers, Number(m[1]) + 1);
  }
  if (nLayers === 0) throw new Error(`${source}: no layers.N.* tensors`);
  const gate = sd.get('layers.0.feed_forward.gate.weight');
  const w1 = sd.get(gate ? 'layers.0.feed_forward.experts.0.w1.weight' : 'layers.0.feed_forward.w1.weight');
  const wk = sd.get('layers.0.attention.wk.weight');
  if (!w1 || !wk) throw new Error(`${source}: layer 0 lacks its attention or feed-forward weights`);
  let shared = 0;
  if (sd.has('layers.0.feed_forward.shared_experts.w1.weight')) shared = 1;
  else while (sd.has(`layers.0.feed_forward.shared_experts.${shared}.w1.weight`)) shared++;
  const nHeads = dim % base.n_heads === 0 ? base.n_heads : 1;
  const nKv = wk.shape[0] / (dim / nHeads);
  const cfg = resolveConfig({
    ...base, dim, n_layers: nLayers, vocab_size: vocab, n_heads: nHeads, n_kv_heads: nKv, hidden_dim: w1.shape[0],
    use_moe: !!gate, ...(gate ? { n_routed_experts: gate.shape[0], n_shared_experts: shared } : {}),
  }, source);
  if (ffnHidden({ ...cfg, hidden_dim: null }) === cfg.hidden_dim) cfg.hidden_dim = null;
  const notes = [`inferred from the tensor shapes: dim=${dim} n_layers=${nLayers} vocab_size=${vocab} ` +
    `use_moe=${cfg.use_moe}${cfg.use_moe ? ` (${cfg.n_routed_experts} routed + ${shared} shared experts)` : ''} ` +
    `ffn hidden=${w1.shape[0]} n_kv_heads=${nKv}; n_heads=${nHeads}, max_seq_len=${cfg.max_seq_len}, ` +
    `rope_theta=${cfg.rope_theta} are not visible in the weights and were taken from the defaults ` +
    '(pass --model-config to set them)'];
  return { cfg, notes };
}

/**
 * Writes a model folder from a state dict: exactly what saveModelFolder writes for a MiniMind with these
 * weights (config.json, model.safetensors in v1 order with the tied output.weight, the tokenizer files).
 */
export function saveStateDictFolder(cfg: LMConfig, sd: StateDict, dir: string, tokenizerDir?: string | null): void {
  const { stateDict } = canonicalStateDict(cfg, sd, dir);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(configJson(cfg), null, 2) + '\n');
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of stateDict) tensors.set(name, { dtype: 'F32', shape: t.shape, data: f32Bytes(t.data) });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt', source: 'minimind-native' });
  if (tokenizerDir) copyTokenizer(tokenizerDir, dir);
}

/** Reads a model folder (config.json + model.safetensors) as a config and a v1-ordered state dict. */
export function readModelFolderStateDict(dir: string): { cfg: LMConfig; stateDict: StateDict } {
  const cfg = readModelConfig(dir);
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${dir}: no model.safetensors`);
  const raw: StateDict = new Map();
  for (const [name, t] of readSafetensors(file).tensors) raw.set(name, { shape: t.shape, data: bytesToF32(t, name, file) });
  return { cfg, stateDict: canonicalStateDict(cfg, raw, file).stateDict };
}

/** The tokenizer files a model folder carries. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

export function copyTokenizer(fromDir: string, toDir: string): void {
  if (path.resolve(fromDir) === path.resolve(toDir)) return;
  for (const f of TOKENIZER_FILES) {
    const src = path.join(fromDir, f);
    if (fs.existsSync(src)) writeFileAtomic(path.join(toDir, f), fs.readFileSync(src));
  }
}

export function readModelConfig(dir: string): LMConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${dir}: not a model folder (no config.json)`);
  return resolveConfig(readJsonObject(file), file);
}
