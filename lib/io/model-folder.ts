// Model folders: config.json (LMConfig field names) + model.safetensors (MiniMind v1 tensor names; the tied
// output.weight is written too, and either key is accepted on load) + the tokenizer files.
// The file layout itself lives in state-dict.ts; this file moves weights between those files and a MiniMind.
import { refreshWorkingCopies } from '../cuda/mixed';
import { MiniMind } from '../nn/model';
import { Device } from '../tensor/dtype';
import { readModelFolderStateDict, saveStateDictFolder, StateDict } from './state-dict';

export { copyTokenizer, readModelConfig, TOKENIZER_FILES } from './state-dict';

/** The v1 state_dict as name → f32 data (the tied output.weight is added by the folder writer). */
export function stateDict(model: MiniMind): StateDict {
  const out: StateDict = new Map();
  for (const [name, t] of model.params.tensors) out.set(name, { shape: [...t.shape], data: t.toArray() as Float32Array });
  return out;
}

/** Copies named f32 tensors into the model; every parameter must be present (output.weight stands in for the embedding). */
export function loadStateDict(model: MiniMind, tensors: StateDict, source: string): void {
  for (const [name, t] of model.params.tensors) {
    const entry = tensors.get(name) ?? (name === 'tok_embeddings.weight' ? tensors.get('output.weight') : undefined);
    if (!entry) throw new Error(`${source}: missing tensor ${name}`);
    if (entry.shape.length !== t.shape.length || entry.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`${source}: tensor ${name} has shape [${entry.shape}], the config expects [${t.shape}]`);
    }
    t.upload(entry.data);
  }
  refreshWorkingCopies(model.params.tensors.values()); // cuda: bf16 copies made before this load
}

export function saveModelFolder(model: MiniMind, dir: string, tokenizerDir?: string | null): void {
  saveStateDictFolder(model.cfg, stateDict(model), dir, tokenizerDir);
}

/** Loads a model folder (config.json + model.safetensors). */
export function loadModelFolder(dir: string, device: Device = 'cpu'): MiniMind {
  const { cfg, stateDict: sd } = readModelFolderStateDict(dir);
  const model = new MiniMind(cfg, device);
  try {
    loadStateDict(model, sd, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
