// LoRA: low-rank adapters on chosen linear layers. For a target with weight W [out, in]:
//   y = x Wᵀ + (alpha / rank) · (x Aᵀ) Bᵀ,   A [rank, in] ~ N(0, 0.02),  B [out, rank] = 0
// so training starts from the base model exactly. Only A and B are trained and saved
// (adapter_model.safetensors + adapter_config.json); `export --merge-lora` folds them into W.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bytesToF32, f32Bytes, readSafetensors, SafeTensor, writeSafetensors } from '../io/safetensors';
import { Linear, MiniMind } from '../nn/model';
import { Tensor } from '../tensor/tensor';
import { writeFileAtomic } from '../util/fsutil';
import { Rng } from '../util/random';

export const LORA_TARGETS = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  rank: number;
  alpha: number;
  targets: LoraTarget[];
}

export function parseTargets(s: string): LoraTarget[] {
  const targets = s.split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) {
      throw new Error(`--lora-targets: unknown target "${t}" (choose from ${LORA_TARGETS.join(',')})`);
    }
  }
  if (!targets.length) throw new Error('--lora-targets: no targets given');
  return targets as LoraTarget[];
}

/** Every targeted linear layer of the model with its weight's name (experts included). */
export function targetLayers(model: MiniMind, targets: LoraTarget[]): { name: string; layer: Linear }[] {
  return model.linearLayers().filter(([kind]) => targets.includes(kind as LoraTarget))
    .map(([, layer]) => ({ name: layer.weight.name.replace(/\.weight$/, ''), layer }));
}

/** Attaches fresh adapters (seeded) and returns their tensors, the only ones to train. */
export function attachLora(model: MiniMind, cfg: LoraConfig, seed: number): Tensor[] {
  const rng = new Rng(seed);
  const trainable: Tensor[] = [];
  for (const { name, layer } of targetLayers(model, cfg.targets)) {
    const [out, inp] = layer.weight.shape;
    const A = Tensor.persistent([cfg.rank, inp], 'f32', model.device);
    const B = Tensor.persistent([out, cfg.rank], 'f32', model.device);
    A.name = `${name}.lora_A.weight`;
    B.name = `${name}.lora_B.weight`;
    A.upload(Float32Array.from({ length: A.size }, () => 0.02 * rng.normal()));
    A.requiresGrad = true;
    B.requiresGrad = true;
    layer.lora = { A, B, scale: cfg.alpha / cfg.rank };
    trainable.push(A, B);
  }
  // The base weights are frozen.
  for (const p of model.parameters()) p.requiresGrad = false;
  return trainable;
}

export function saveLora(model: MiniMind, cfg: LoraConfig, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, SafeTensor>();
  for (const { layer } of targetLayers(model, cfg.targets)) {
    if (!layer.lora) continue;
    for (const t of [layer.lora.A, layer.lora.B]) {
      tensors.set(t.name, { dtype: 'F32', shape: [...t.shape], data: f32Bytes(t.toArray() as Float32Array) });
    }
  }
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
  writeFileAtomic(path.join(dir, 'adapter_config.json'),
    JSON.stringify({ r: cfg.rank, lora_alpha: cfg.alpha, target_modules: cfg.targets }, null, 2) + '\n');
}

export function readLoraConfig(dir: string): LoraConfig {
  const file = path.join(dir, 'adapter_config.json');
  if (!fs.existsSync(file)) throw new Error(`${dir}: not a LoRA folder (no adapter_config.json)`);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { r: number; lora_alpha: number; target_modules: string[] };
  return { rank: raw.r, alpha: raw.lora_alpha, targets: parseTargets(raw.target_modules.join(',')) };
}

/** Uploads saved adapter weights into the adapters already attached to the model (resume, inference). */
export function loadLoraInto(model: MiniMind, cfg: LoraConfig, dir: string): void {
  const file = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${dir}: no adapter_model.safetensors`);
  const { tensors } = readSafetensors(file);
  for (const { layer } of targetLayers(model, cfg.targets)) {
    for (const t of [layer.lora!.A, layer.lora!.B]) {
      const saved = tensors.get(t.name);
      if (!saved) throw new Error(`${file}: missing tensor ${t.name}`);
      if (saved.shape.join() !== t.shape.join()) {
        throw new Error(`${file}: tensor ${t.name} has shape [${saved.shape}], the model expects [${t.shape}]`);
      }
      t.upload(bytesToF32(saved, t.name, file));
    }
  }
}

/** Loads a LoRA folder onto the model (for generate/chat/serve --lora). */
export function applyLora(model: MiniMind, dir: string): LoraConfig {
  const cfg = readLoraConfig(dir);
  attachLora(model, cfg, 0);
  loadLoraInto(model, cfg, dir);
  return cfg;
}

/** w [out, in] += scale · b [out, r] @ a [r, in], on host arrays. */
function addLowRank(w: Float32Array, a: Float32Array, b: Float32Array, out: number, inp: number, r: number, scale: number): void {
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) {
      const bk = scale * b[o * r + k];
      if (bk === 0) continue;
      for (let i = 0; i < inp; i++) w[o * inp + i] += bk * a[k * inp + i];
    }
  }
}

/** Folds every adapter into its weight: W += scale · B A; the adapters are then removed. */
export function mergeLora(model: MiniMind): void {
  for (const { layer } of targetLayers(model, [...LORA_TARGETS])) {
    if (!layer.lora) continue;
    const { A, B, scale } = layer.lora;
    const [out, inp] = layer.weight.shape;
    const w = layer.weight.toArray() as Float32Array;
    addLowRank(w, A.toArray() as Float32Array, B.toArray() as Float32Array, out, inp, A.shape[0], scale);
    layer.weight.upload(w);
    A.dispose();
    B.dispose();
    layer.lora = null;
  }
}

/** The same merge on a v1 state dict (for `export --merge-lora DIR`), without building a model. */
export function mergeLoraStateDict(sd: Map<string, { shape: number[]; data: Float32Array }>, dir: string):
  Map<string, { shape: number[]; data: Float32Array }> {
  const cfg = readLoraConfig(dir);
  const file = path.join(dir, 'adapter_model.safetensors');
  const { tensors } = readSafetensors(file);
  const out = new Map(sd);
  for (const [name, A] of tensors) {
    const m = /^(.*)\.lora_A\.weight$/.exec(name);
    if (!m) continue;
    const base = `${m[1]}.weight`;
    const B = tensors.get(`${m[1]}.lora_B.weight`);
    const w = sd.get(base);
    if (!B || !w) throw new Error(`${file}: adapter ${m[1]} has no matching lora_B or base weight ${base}`);
    const data = Float32Array.from(w.data);
    addLowRank(data, bytesToF32(A, name, file), bytesToF32(B, `${m[1]}.lora_B.weight`, file), w.shape[0], w.shape[1], A.shape[0],
      cfg.alpha / cfg.rank);
    out.set(base, { shape: w.shape, data });
  }
  return out;
}
