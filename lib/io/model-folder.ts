// Model folders: config.json (LMConfig field names) + model.safetensors (MiniMind v1 tensor names; the tied
// output.weight is written too, and either key is accepted on load) + the tokenizer files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { configJson, LMConfig, resolveConfig } from '../nn/config';
import { MiniMind } from '../nn/model';
import { Device } from '../tensor/dtype';
import { writeFileAtomic } from '../util/fsutil';
import { bytesToF32, f32Bytes, readSafetensors, SafeTensor, writeSafetensors } from './safetensors';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** The v1 state_dict as name → f32 data, including the tied output.weight. */
export function stateDict(model: MiniMind): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of model.params.tensors) {
    out.set(name, { shape: [...t.shape], data: t.toArray() as Float32Array });
    if (name === 'norm.weight') {
      // v1 emits output.weight last, after the final norm.
      out.set('output.weight', { shape: [...model.tokEmbeddings.shape], data: model.tokEmbeddings.toArray() as Float32Array });
    }
  }
  return out;
}

/** Copies named f32 tensors into the model; every parameter must be present (output.weight stands in for the embedding). */
export function loadStateDict(model: MiniMind, tensors: Map<string, { shape: number[]; data: Float32Array }>, source: string): void {
  for (const [name, t] of model.params.tensors) {
    const entry = tensors.get(name) ?? (name === 'tok_embeddings.weight' ? tensors.get('output.weight') : undefined);
    if (!entry) throw new Error(`${source}: missing tensor ${name}`);
    if (entry.shape.length !== t.shape.length || entry.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`${source}: tensor ${name} has shape [${entry.shape}], the config expects [${t.shape}]`);
    }
    t.upload(entry.data);
  }
}

export function saveModelFolder(model: MiniMind, dir: string, tokenizerDir?: string | null): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(configJson(model.cfg), null, 2) + '\n');
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of stateDict(model)) tensors.set(name, { dtype: 'F32', shape: t.shape, data: f32Bytes(t.data) });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt', source: 'minimind-native' });
  if (tokenizerDir) copyTokenizer(tokenizerDir, dir);
}

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
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return resolveConfig(raw as Record<string, unknown>, file);
}

/** Loads a model folder (config.json + model.safetensors). */
export function loadModelFolder(dir: string, device: Device = 'cpu'): MiniMind {
  const cfg = readModelConfig(dir);
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${dir}: no model.safetensors`);
  const { tensors } = readSafetensors(file);
  const f32 = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of tensors) f32.set(name, { shape: t.shape, data: bytesToF32(t, name, file) });
  const model = new MiniMind(cfg, device);
  try {
    loadStateDict(model, f32, file);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
