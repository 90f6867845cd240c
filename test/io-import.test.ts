// `import` and `export` end to end on state dicts: bare .pth files (config inferred from the shapes), v1 HF folders
// (config.json with LMConfig names + pytorch_model.bin + tokenizer), shape checks against a named config, the
// model folder that saveStateDictFolder writes, the export transform hook, and the yargs commands.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { exportCommand, exportModel, importCommand, readImportSource } from '../lib/cli/io';
import { configJson, resolveConfig } from '../lib/nn/config';
import { readGguf } from '../lib/io/gguf';
import { readSafetensors } from '../lib/io/safetensors';
import { readModelFolderStateDict, saveStateDictFolder, StateDict, v1TensorShapes } from '../lib/io/state-dict';
import { sampleStateDict } from './io-helpers';
import { FakeStorage, FakeTensor, storageBytes, torchSaveLegacy, torchSaveZip } from './io-torchwriter';

const V1_TOKENIZER = path.join(__dirname, '..', '..', 'shared', 'fixtures', 'minimind', 'v1_2024-10-15_6861d1a');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-import-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** torch.save entries for a state dict: one storage per tensor, output.weight sharing the embedding's. */
function torchEntries(sd: StateDict, prefix = ''): [string, FakeTensor][] {
  const storages = new Map<Float32Array, FakeStorage>();
  return [...sd].map(([name, t]) => {
    let s = storages.get(t.data);
    if (!s) storages.set(t.data, (s = { key: String(storages.size), cls: 'FloatStorage', numel: t.data.length, bytes: storageBytes('FloatStorage', t.data) }));
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    return [prefix + name, { storage: s, offset: 0, shape: t.shape, stride }];
  });
}

function expectSameStateDict(a: StateDict, b: StateDict) {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, t] of a) {
    expect(b.get(name)!.shape).toEqual(t.shape);
    if (Buffer.compare(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      Buffer.from(b.get(name)!.data.buffer, b.get(name)!.data.byteOffset, b.get(name)!.data.byteLength)) !== 0) {
      throw new Error(`tensor ${name} differs`);
    }
  }
}

// dim 64 with v1's 16 heads / 8 kv heads (head dim 4), a 300-token vocab
const dense = resolveConfig({ dim: 64, n_layers: 2, vocab_size: 300 }, 'dense');
const moe = resolveConfig({ dim: 64, n_layers: 2, vocab_size: 300, use_moe: true }, 'moe');

describe('import', () => {
  test('a bare .pth (torch.compile prefix, mask buffer, tied storage): config inferred, folder as saveModelFolder writes it', () => {
    const sd = sampleStateDict(dense);
    const entries = torchEntries(sd, '_orig_mod.');
    entries.push(['_orig_mod.layers.0.attention.mask', entries[1][1]]);
    const file = path.join(tmp, 'pretrain_64.pth');
    fs.writeFileSync(file, torchSaveZip(entries, { archive: 'pretrain_64', metadata: true }));
    const src = readImportSource(file);
    expect(src.notes.join(' ')).toMatch(/inferred from the tensor shapes: dim=64 n_layers=2 vocab_size=300 use_moe=false/);
    expect(src.cfg).toEqual(dense);
    expect(src.tokenizerDir).toBeNull();
    const out = path.join(tmp, 'imported-dense');
    saveStateDictFolder(src.cfg, src.stateDict, out);
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe(JSON.stringify(configJson(dense), null, 2) + '\n');
    const { tensors, metadata } = readSafetensors(path.join(out, 'model.safetensors'));
    expect(metadata).toEqual({ format: 'pt', source: 'minimind-native' });
    expect([...tensors.keys()]).toEqual(v1TensorShapes(dense).map(([n]) => n)); // v1 order, output.weight last
    expectSameStateDict(sd, readModelFolderStateDict(out).stateDict);
  });

  test('a v1 HF folder (export_model.py layout, MoE, legacy pickle) with its tokenizer', () => {
    const sd = sampleStateDict(moe);
    const dir = path.join(tmp, 'minimind-v1-moe');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), torchSaveLegacy(torchEntries(sd)));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      architectures: ['Transformer'], auto_map: { AutoConfig: 'LMConfig.LMConfig', AutoModelForCausalLM: 'model.Transformer' },
      dim: 64, n_layers: 2, n_heads: 16, n_kv_heads: 8, vocab_size: 300, hidden_dim: null, multiple_of: 64, norm_eps: 1e-5,
      max_seq_len: 512, dropout: 0.0, flash_attn: true, use_moe: true, num_experts_per_tok: 2, n_routed_experts: 4,
      n_shared_experts: true, scoring_func: 'softmax', aux_loss_alpha: 0.01, seq_aux: true, norm_topk_prob: true,
      model_type: 'minimind', torch_dtype: 'float32', transformers_version: '4.44.0',
    }));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(V1_TOKENIZER, f), path.join(dir, f));
    const src = readImportSource(dir);
    expect(src.cfg).toEqual(moe);
    expect(src.notes).toEqual([]);
    const out = path.join(tmp, 'imported-moe');
    saveStateDictFolder(src.cfg, src.stateDict, out, src.tokenizerDir);
    expect(fs.readFileSync(path.join(out, 'tokenizer.json')).equals(fs.readFileSync(path.join(V1_TOKENIZER, 'tokenizer.json')))).toBe(true);
    expectSameStateDict(sd, readModelFolderStateDict(out).stateDict);
    // the same weights as a bare file: the MoE layout is inferred too
    const bare = readImportSource(path.join(dir, 'pytorch_model.bin'));
    expect(bare.cfg).toEqual(moe);
    expect(bare.notes.join(' ')).toMatch(/use_moe=true \(4 routed \+ 1 shared experts\)/);
  });

  test('a named config that does not fit the tensors is an error naming the tensor', () => {
    const file = path.join(tmp, 'pretrain_64.pth');
    expect(() => readImportSource(file, 'minimind-v1-small')).toThrow(/pretrain_64\.pth: tensor tok_embeddings\.weight has shape \[300,64\], the config expects \[6400,512\]/);
    expect(() => readImportSource(path.join(tmp, 'nope.pth'))).toThrow(/no such file/);
  });
});

describe('export', () => {
  test('from a model folder, with the state-dict transform hook', () => {
    const folder = path.join(tmp, 'model-v1');
    saveStateDictFolder(dense, sampleStateDict(dense), folder, V1_TOKENIZER);
    // the 300-token model cannot hold the 6400-token tokenizer
    expect(() => exportModel({ model: folder, format: 'gguf', out: path.join(tmp, 'x.gguf'), dtype: 'f32' })).toThrow(/outside the model's vocab_size 300/);
    const big = resolveConfig({ dim: 64, n_layers: 1 }, 'big');
    saveStateDictFolder(big, sampleStateDict(big), folder, V1_TOKENIZER);
    const doubleNorm = (_cfg: unknown, sd: StateDict): StateDict =>
      new Map([...sd].map(([n, t]) => [n, n === 'norm.weight' ? { shape: t.shape, data: t.data.map((v) => 2 * v) } : t]));
    const gguf = path.join(tmp, 'model.gguf');
    exportModel({ model: folder, format: 'gguf', out: gguf, dtype: 'f32' }, doubleNorm);
    const norm = readGguf(gguf).tensors.find((t) => t.name === 'output_norm.weight')!;
    expect(Array.from(norm.data)).toEqual(Array.from(readModelFolderStateDict(folder).stateDict.get('norm.weight')!.data, (v) => 2 * v));
    expect(() => exportModel({ model: folder, format: 'hf', out: path.join(tmp, 'hf'), dtype: 'f16' })).toThrow(/--dtype applies to gguf only/);
  });

  test('the yargs commands parse their options and run', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const out = path.join(tmp, 'cli-import');
      await yargs().command(importCommand).strict().parseAsync(['import', '--from', path.join(tmp, 'minimind-v1-moe'), '--out', out]);
      expect(readModelFolderStateDict(out).cfg).toEqual({ ...moe, hidden_dim: 192 }); // folders record the FFN width
      const hf = path.join(tmp, 'cli-hf');
      await yargs().command(exportCommand).strict().parseAsync(['export', '--model', out, '--format', 'hf', '--out', hf]);
      expect(log.mock.calls.flat().join('\n')).toMatch(/MoE model: written as a minimind-native model folder/);
      expect(readModelFolderStateDict(hf).cfg).toEqual({ ...moe, hidden_dim: 192 });
    } finally {
      log.mockRestore();
    }
  });
});
