// Model folders: config.json (LMConfig field names) + model.safetensors (MiniMind v1 tensor names; the tied
// output.weight is written too, and either key is accepted on load) + the tokenizer files.
// The file layout itself lives in state-dict.ts; this file moves weights between those files and a MiniMind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { refreshWorkingCopies } from '../cuda/mixed';
import { checkWeightDtype, WeightDtype, WeightWriter } from '../infer/weights';
import { MiniMind } from '../nn/model';
import { Device } from '../tensor/dtype';
import { bytesToF32, SafetensorsFile } from './safetensors';
import { readModelConfig, saveStateDictFolder, StateDict } from './state-dict';

export { copyTokenizer, readModelConfig, TOKENIZER_FILES } from './state-dict';

/** The v1 state_dict as name → f32 data (the tied output.weight is added by the folder writer). */
export function stateDict(model: MiniMind): StateDict {
  const out: StateDict = new Map();
  for (const [name, t] of model.params.tensors) {
    if (t.dtype !== 'f32') throw new Error(`state dict: ${t.describe()} is an inference weight; load the model with f32 weights to save it`);
    out.set(name, { shape: [...t.shape], data: t.toArray() as Float32Array });
  }
  return out;
}

export function saveModelFolder(model: MiniMind, dir: string, tokenizerDir?: string | null): void {
  saveStateDictFolder(model.cfg, stateDict(model), dir, tokenizerDir);
}

/** Bytes read at a time while loading (a multiple of 8, so f32 views of the buffer are aligned). */
const LOAD_PIECE_BYTES = 1 << 20;

/**
 * Loads a model folder (config.json + model.safetensors), with the weight matrices in `dtype` (bf16/f16:
 * inference only, see lib/infer/weights.ts). Tensors are read a piece at a time into a small reused buffer, so
 * the process holds the weights once, never the whole file, a second copy of it, or f32 copies of half weights.
 */
export function loadModelFolder(dir: string, device: Device = 'cpu', dtype: WeightDtype = 'f32'): MiniMind {
  const matrixDtype = checkWeightDtype(dtype, device);
  const cfg = readModelConfig(dir);
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${dir}: no model.safetensors`);
  const source = new SafetensorsFile(file);
  const model = new MiniMind(cfg, device, matrixDtype);
  const writer = new WeightWriter();
  try {
    const piece = new Uint8Array(LOAD_PIECE_BYTES);
    for (const [name, t] of model.params.tensors) {
      // Either tied key may hold the embedding.
      const stored = !source.entries.has(name) && name === 'tok_embeddings.weight' ? 'output.weight' : name;
      const entry = source.entries.get(stored);
      if (!entry) throw new Error(`${file}: missing tensor ${name} (expected shape [${t.shape}])`);
      if (entry.shape.length !== t.shape.length || entry.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`${file}: tensor ${stored} has shape [${entry.shape}], the config expects [${t.shape}]`);
      }
      const elementBytes = (entry.end - entry.start) / t.size;
      for (let at = 0; at < t.size; at += LOAD_PIECE_BYTES / 4) {
        const count = Math.min(LOAD_PIECE_BYTES / 4, t.size - at);
        const bytes = source.readBytes(stored, at * elementBytes, piece.subarray(0, count * elementBytes));
        writer.write(t, at, bytesToF32({ dtype: entry.dtype, shape: [count], data: bytes }, stored, file));
      }
    }
    refreshWorkingCopies(model.params.tensors.values()); // cuda: bf16 copies made before this load
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    writer.dispose();
    source.close();
  }
  return model;
}
