// `minimind-native import` (PyTorch/HF checkpoints → a model folder) and `minimind-native export` (a model folder
// → a Hugging Face Llama folder or a llama.cpp GGUF file). Both work on state dicts; no MiniMind is built.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadConfig, LMConfig, resolveConfig } from '../nn/config';
import { exportGguf } from '../io/gguf';
import { configFromHf, exportHf, fromLlamaStateDict, isHfConfig } from '../io/hf';
import { readTorchStateDict } from '../io/pytorch';
import { bytesToF32, readSafetensors } from '../io/safetensors';
import {
  canonicalStateDict, inferConfig, readModelFolderStateDict, saveStateDictFolder, StateDict, StateDictTransform,
} from '../io/state-dict';
import { readJsonObject } from '../util/fsutil';
import { mergeLoraStateDict } from '../train/lora';

/** Weight files a checkpoint folder may hold, in the order they are looked for. */
const WEIGHT_FILES = ['pytorch_model.bin', 'model.safetensors'];

function readWeights(file: string): StateDict {
  if (!file.endsWith('.safetensors')) return readTorchStateDict(file);
  const out: StateDict = new Map();
  for (const [name, t] of readSafetensors(file).tensors) out.set(name, { shape: t.shape, data: bytesToF32(t, name, file) });
  return out;
}

/**
 * Reads a checkpoint to import: a folder (config.json with LMConfig or HF field names + pytorch_model.bin,
 * model.safetensors or a single .pth/.pt/.bin; tokenizer files are picked up) or a bare .pth/.bin/.safetensors
 * file. The config comes from `modelConfig` (a named config or a JSON file), else config.json, else the tensor
 * shapes (with minimind-v1-small's defaults for what shapes do not show).
 */
export function readImportSource(from: string, modelConfig?: string): { cfg: LMConfig; stateDict: StateDict; tokenizerDir: string | null; notes: string[] } {
  if (!fs.existsSync(from)) throw new Error(`${from}: no such file or folder`);
  const notes: string[] = [];
  let weightsFile = from;
  let configRaw: Record<string, unknown> | null = null;
  let tokenizerDir: string | null = null;
  if (fs.statSync(from).isDirectory()) {
    let weights = WEIGHT_FILES.find((f) => fs.existsSync(path.join(from, f)));
    if (!weights) {
      const found = fs.readdirSync(from).filter((f) => /\.(pth|pt|bin)$/.test(f));
      if (found.length !== 1) {
        throw new Error(`${from}: expected pytorch_model.bin, model.safetensors or a single .pth/.pt/.bin file, found ${found.length ? found.join(', ') : 'none'}`);
      }
      weights = found[0];
    }
    weightsFile = path.join(from, weights);
    if (fs.existsSync(path.join(from, 'config.json'))) configRaw = readJsonObject(path.join(from, 'config.json'));
    if (fs.existsSync(path.join(from, 'tokenizer.json'))) tokenizerDir = from;
  }
  const raw = readWeights(weightsFile);
  const hfNames = raw.has('model.embed_tokens.weight');
  const sd = hfNames ? fromLlamaStateDict(raw) : raw;
  let cfg: LMConfig;
  if (modelConfig) cfg = loadConfig(modelConfig);
  else if (configRaw) {
    const where = path.join(from, 'config.json');
    cfg = isHfConfig(configRaw) ? configFromHf(configRaw, where) : resolveConfig(configRaw, where);
  } else {
    const inferred = inferConfig(sd, loadConfig('minimind-v1-small'), weightsFile);
    cfg = inferred.cfg;
    notes.push(...inferred.notes);
  }
  if (hfNames && cfg.rope_style !== 'half') {
    cfg = { ...cfg, rope_style: 'half' };
    notes.push('HF-layout tensor names: the weights use rotate-half RoPE (rope_style "half")');
  }
  const { stateDict, ignored } = canonicalStateDict(cfg, sd, weightsFile);
  if (ignored.length) notes.push(`ignored ${ignored.length} tensors the model does not use: ${ignored.slice(0, 5).join(', ')}${ignored.length > 5 ? ', ...' : ''}`);
  return { cfg, stateDict, tokenizerDir, notes };
}

export interface ExportOptions {
  model: string;
  format: 'folder' | 'hf' | 'gguf';
  out: string;
  dtype: 'f32' | 'f16';
  'merge-lora'?: string;
}

/**
 * Exports a model folder. `transform` is the hook for state-dict rewrites before export (e.g. merging LoRA
 * adapters); it receives and returns v1-named tensors.
 */
export function exportModel(opts: ExportOptions, transform?: StateDictTransform): string[] {
  const { cfg, stateDict } = readModelFolderStateDict(opts.model);
  const sd = transform ? transform(cfg, stateDict) : stateDict;
  const tokenizerDir = fs.existsSync(path.join(opts.model, 'tokenizer.json')) ? opts.model : null;
  if (opts.format === 'folder') {
    saveStateDictFolder(cfg, sd, opts.out, tokenizerDir);
    return [];
  }
  if (opts.format === 'hf') {
    if (opts.dtype !== 'f32') throw new Error('--format hf writes float32 weights; --dtype applies to gguf only');
    return exportHf(cfg, sd, tokenizerDir, opts.out);
  }
  if (!tokenizerDir) throw new Error(`${opts.model}: no tokenizer.json, which a GGUF file needs`);
  return exportGguf(cfg, sd, tokenizerDir, opts.out, { dtype: opts.dtype, name: path.basename(path.resolve(opts.model)) });
}

interface ImportArgs {
  from: string;
  out: string;
  'model-config'?: string;
}

export const importCommand: CommandModule<object, ImportArgs> = {
  command: 'import',
  describe: 'Import a MiniMind PyTorch checkpoint (.pth, or an HF folder with pytorch_model.bin) as a model folder',
  builder: (y: Argv) =>
    y
      .option('from', { type: 'string', demandOption: true, describe: 'a .pth/.bin/.safetensors file or a checkpoint folder' })
      .option('model-config', { type: 'string', describe: 'named config or config.json (default: the folder\'s config.json, else inferred from the shapes)' })
      .option('out', { type: 'string', demandOption: true, describe: 'model folder to write' }) as Argv<ImportArgs>,
  handler: (argv) => {
    const { cfg, stateDict, tokenizerDir, notes } = readImportSource(argv.from, argv['model-config']);
    for (const n of notes) console.log(`note: ${n}`);
    saveStateDictFolder(cfg, stateDict, argv.out, tokenizerDir);
    console.log(`wrote ${argv.out} (dim ${cfg.dim}, ${cfg.n_layers} layers${cfg.use_moe ? ', MoE' : ''}` +
      `${tokenizerDir ? ', tokenizer copied' : ', no tokenizer files in the source'})`);
  },
};

export const exportCommand: CommandModule<object, ExportOptions> = {
  command: 'export',
  describe: 'Export a model folder: --format hf (transformers LlamaForCausalLM folder; MoE models keep MiniMind names, ' +
    'loadable by minimind-native and upstream MiniMind v1 model.py) or --format gguf (llama.cpp/ollama)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (config.json + model.safetensors)' })
      .option('format', { choices: ['folder', 'hf', 'gguf'] as const, default: 'folder' as const,
        describe: 'folder (our model folder, e.g. with --merge-lora), hf or gguf' })
      .option('merge-lora', { type: 'string', describe: 'fold this LoRA adapter folder into the weights first' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder/hf: a folder; gguf: a .gguf file' })
      .option('dtype', { choices: ['f32', 'f16'] as const, default: 'f32' as const, describe: 'gguf: weight type (norms stay f32)' }) as
      Argv<ExportOptions>,
  handler: (argv) => {
    const loraDir = argv['merge-lora'];
    const notes = exportModel(argv, loraDir ? (_cfg, sd) => mergeLoraStateDict(sd, loraDir) : undefined);
    for (const n of notes) console.log(`note: ${n}`);
    console.log(`wrote ${argv.out}`);
  },
};
