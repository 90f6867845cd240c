// Exports checked end to end against the upstream v1 model: the golden tiny dense model
// (../shared/fixtures/minimind/golden_v1_tiny_forward.json: formula weights, logits from upstream model.py) is
// exported to a HF Llama folder and to GGUF (f32, f16); a plain float64 forward pass in this file reads each
// export the way its consumer would (HF: Llama names, rotate-half RoPE, tied lm_head; GGUF: llama.cpp's names and
// adjacent-pair NORM RoPE, token_embd reused as output) and must reproduce the upstream logits.
// Also: the RoPE row permutation on its own, the HF folder's config and files, and the HF → import round trip.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readImportSource } from '../lib/cli/io';
import { ffnHidden, headDim, LMConfig, resolveConfig } from '../lib/nn/config';
import { exportGguf, readGguf } from '../lib/io/gguf';
import { configFromHf, exportHf, halfToInterleavedRows, interleavedToHalfRows, llamaConfig } from '../lib/io/hf';
import { bytesToF32, readSafetensors } from '../lib/io/safetensors';
import { readModelFolderStateDict, StateDict, v1TensorShapes } from '../lib/io/state-dict';
import { expectClose, randn } from './helpers';
import { sampleStateDict } from './io-helpers';

const FIXTURES = path.join(__dirname, '..', '..', 'shared', 'fixtures', 'minimind');
const V1_TOKENIZER = path.join(FIXTURES, 'v1_2024-10-15_6861d1a');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-export-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Golden {
  config: Record<string, number | boolean>;
  param_order_for_weight_formula: string[];
  input_tokens: number[];
  logits: number[][];
}
const golden = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'golden_v1_tiny_forward.json'), 'utf8')) as { dense: Golden }).dense;
const goldenCfg: LMConfig = resolveConfig({ ...golden.config, use_moe: false }, 'golden');

/** The fixture's weights: tensor t, flat index j → 0.05·sin(0.7j + 1.3t + 0.1) (+1 for norms), as f32. */
function goldenStateDict(): StateDict {
  const shapes = new Map(v1TensorShapes(goldenCfg));
  const sd: StateDict = new Map();
  golden.param_order_for_weight_formula.forEach((name, t) => {
    const shape = shapes.get(name)!;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let j = 0; j < data.length; j++) data[j] = (name.endsWith('norm.weight') ? 1 : 0) + 0.05 * Math.sin(0.7 * j + 1.3 * t + 0.1);
    sd.set(name, { shape, data });
  });
  sd.set('output.weight', sd.get('tok_embeddings.weight')!); // tied
  return sd;
}

// ---- a float64 reference forward pass of a dense Llama-shaped model ----

interface LayerWeights { wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array; attnNorm: Float32Array;
  ffnNorm: Float32Array; gate: Float32Array; up: Float32Array; down: Float32Array }
interface ModelWeights { embed: Float32Array; layers: LayerWeights[]; norm: Float32Array; output: Float32Array }

/** y = W x for W [rows, cols] row-major. */
function matvec(w: Float32Array, x: Float64Array, rows: number): Float64Array {
  const cols = x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const inv = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}

/** Rotates each head of v at position p: pairs (2i, 2i+1) for 'interleaved', (i, i + hd/2) for 'half'. */
function rope(v: Float64Array, p: number, hd: number, theta: number, style: 'interleaved' | 'half'): Float64Array {
  const out = Float64Array.from(v);
  for (let h = 0; h < v.length / hd; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const a = p * theta ** ((-2 * i) / hd);
      const [j0, j1] = style === 'interleaved' ? [h * hd + 2 * i, h * hd + 2 * i + 1] : [h * hd + i, h * hd + i + hd / 2];
      out[j0] = v[j0] * Math.cos(a) - v[j1] * Math.sin(a);
      out[j1] = v[j0] * Math.sin(a) + v[j1] * Math.cos(a);
    }
  }
  return out;
}

function referenceLogits(cfg: LMConfig, W: ModelWeights, tokens: number[], style: 'interleaved' | 'half'): Float64Array[] {
  const hd = headDim(cfg);
  const hidden = ffnHidden(cfg);
  const rep = cfg.n_heads / cfg.n_kv_heads;
  let xs = tokens.map((t) => Float64Array.from(W.embed.subarray(t * cfg.dim, (t + 1) * cfg.dim)));
  for (const L of W.layers) {
    const hs = xs.map((x) => rmsnorm(x, L.attnNorm, cfg.norm_eps));
    const qs = hs.map((h, p) => rope(matvec(L.wq, h, cfg.n_heads * hd), p, hd, cfg.rope_theta, style));
    const ks = hs.map((h, p) => rope(matvec(L.wk, h, cfg.n_kv_heads * hd), p, hd, cfg.rope_theta, style));
    const vs = hs.map((h) => matvec(L.wv, h, cfg.n_kv_heads * hd));
    xs = xs.map((x, p) => {
      const attn = new Float64Array(cfg.n_heads * hd);
      for (let h = 0; h < cfg.n_heads; h++) {
        const kv = Math.floor(h / rep);
        const scores = Array.from({ length: p + 1 }, (_, s) => {
          let d = 0;
          for (let i = 0; i < hd; i++) d += qs[p][h * hd + i] * ks[s][kv * hd + i];
          return d / Math.sqrt(hd);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= p; s++) for (let i = 0; i < hd; i++) attn[h * hd + i] += (e[s] / z) * vs[s][kv * hd + i];
      }
      const o = matvec(L.wo, attn, cfg.dim);
      const x1 = x.map((v, i) => v + o[i]);
      const f = rmsnorm(x1, L.ffnNorm, cfg.norm_eps);
      const g = matvec(L.gate, f, hidden);
      const u = matvec(L.up, f, hidden);
      const act = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]);
      const d = matvec(L.down, act, cfg.dim);
      return x1.map((v, i) => v + d[i]);
    });
  }
  return xs.map((x) => matvec(W.output, rmsnorm(x, W.norm, cfg.norm_eps), cfg.vocab_size));
}

function expectGoldenLogits(logits: Float64Array[], atol: number, what: string) {
  logits.forEach((row, p) => expectClose(row, golden.logits[p], atol, 0, `${what} position ${p}`));
}

// ---- weights as each consumer sees them ----

function v1Weights(cfg: LMConfig, sd: StateDict): ModelWeights {
  const g = (n: string) => sd.get(n)!.data;
  return {
    embed: g('tok_embeddings.weight'), norm: g('norm.weight'), output: g('output.weight'),
    layers: Array.from({ length: cfg.n_layers }, (_, i) => ({
      wq: g(`layers.${i}.attention.wq.weight`), wk: g(`layers.${i}.attention.wk.weight`), wv: g(`layers.${i}.attention.wv.weight`),
      wo: g(`layers.${i}.attention.wo.weight`), attnNorm: g(`layers.${i}.attention_norm.weight`), ffnNorm: g(`layers.${i}.ffn_norm.weight`),
      gate: g(`layers.${i}.feed_forward.w1.weight`), up: g(`layers.${i}.feed_forward.w3.weight`), down: g(`layers.${i}.feed_forward.w2.weight`),
    })),
  };
}

function hfWeights(cfg: LMConfig, dir: string): ModelWeights {
  const file = path.join(dir, 'model.safetensors');
  const tensors = readSafetensors(file).tensors;
  const g = (n: string) => {
    const t = tensors.get(n);
    if (!t) throw new Error(`HF export lacks ${n}`);
    return bytesToF32(t, n, file);
  };
  const embed = g('model.embed_tokens.weight');
  return {
    embed, norm: g('model.norm.weight'), output: embed, // tie_word_embeddings
    layers: Array.from({ length: cfg.n_layers }, (_, i) => {
      const p = `model.layers.${i}`;
      return { wq: g(`${p}.self_attn.q_proj.weight`), wk: g(`${p}.self_attn.k_proj.weight`), wv: g(`${p}.self_attn.v_proj.weight`),
        wo: g(`${p}.self_attn.o_proj.weight`), attnNorm: g(`${p}.input_layernorm.weight`), ffnNorm: g(`${p}.post_attention_layernorm.weight`),
        gate: g(`${p}.mlp.gate_proj.weight`), up: g(`${p}.mlp.up_proj.weight`), down: g(`${p}.mlp.down_proj.weight`) };
    }),
  };
}

function ggufWeights(cfg: LMConfig, file: string): ModelWeights {
  const { tensors } = readGguf(file);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const g = (n: string) => {
    const t = byName.get(n);
    if (!t) throw new Error(`GGUF export lacks ${n}`);
    return t;
  };
  const embed = g('token_embd.weight');
  return {
    embed, norm: g('output_norm.weight'), output: byName.get('output.weight') ?? embed, // llama.cpp: TENSOR_DUPLICATED
    layers: Array.from({ length: cfg.n_layers }, (_, i) => ({
      wq: g(`blk.${i}.attn_q.weight`), wk: g(`blk.${i}.attn_k.weight`), wv: g(`blk.${i}.attn_v.weight`), wo: g(`blk.${i}.attn_output.weight`),
      attnNorm: g(`blk.${i}.attn_norm.weight`), ffnNorm: g(`blk.${i}.ffn_norm.weight`), gate: g(`blk.${i}.ffn_gate.weight`),
      up: g(`blk.${i}.ffn_up.weight`), down: g(`blk.${i}.ffn_down.weight`),
    })),
  };
}

/** A tokenizer folder for the 256-token golden model: v1's first 256 tokens, no merges. */
function tinyTokenizerDir(): string {
  const dir = path.join(tmp, 'tok256');
  fs.mkdirSync(dir, { recursive: true });
  const full = JSON.parse(fs.readFileSync(path.join(V1_TOKENIZER, 'tokenizer.json'), 'utf8'));
  full.model.vocab = Object.fromEntries(Object.entries(full.model.vocab as Record<string, number>).filter(([, id]) => id < 256));
  full.model.merges = [];
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(full));
  fs.copyFileSync(path.join(V1_TOKENIZER, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  return dir;
}

describe('exports reproduce the upstream v1 logits', () => {
  const sd = goldenStateDict();
  const tokens = golden.input_tokens;

  test('the reference forward with interleaved RoPE on the v1 weights matches upstream', () => {
    expectGoldenLogits(referenceLogits(goldenCfg, v1Weights(goldenCfg, sd), tokens, 'interleaved'), 2e-5, 'v1');
  });

  test('HF export read as Llama (rotate-half RoPE, tied lm_head) matches upstream', () => {
    const out = path.join(tmp, 'hf-golden');
    exportHf(goldenCfg, sd, tinyTokenizerDir(), out);
    expectGoldenLogits(referenceLogits(goldenCfg, hfWeights(goldenCfg, out), tokens, 'half'), 2e-5, 'hf');
    // without the row permutation the same reading is wrong: the permutation is what makes it work
    expect(() => expectGoldenLogits(referenceLogits(goldenCfg, v1Weights(goldenCfg, sd), tokens, 'half'), 2e-5, 'unpermuted')).toThrow();
  });

  test('GGUF f32 read as llama.cpp does (adjacent-pair RoPE, token_embd as output) matches upstream; f16 closely', () => {
    const f32 = path.join(tmp, 'golden-f32.gguf');
    exportGguf(goldenCfg, sd, tinyTokenizerDir(), f32);
    expectGoldenLogits(referenceLogits(goldenCfg, ggufWeights(goldenCfg, f32), tokens, 'interleaved'), 2e-5, 'gguf f32');
    const f16 = path.join(tmp, 'golden-f16.gguf');
    exportGguf(goldenCfg, sd, tinyTokenizerDir(), f16, { dtype: 'f16' });
    expectGoldenLogits(referenceLogits(goldenCfg, ggufWeights(goldenCfg, f16), tokens, 'interleaved'), 2e-3, 'gguf f16');
  });

  test('a rotate-half model (HF import of the export) exports to GGUF with rows back in pair order', () => {
    const hfDir = path.join(tmp, 'hf-golden-2');
    exportHf(goldenCfg, sd, tinyTokenizerDir(), hfDir);
    const imported = readImportSource(hfDir);
    expect(imported.cfg.rope_style).toBe('half');
    expectGoldenLogits(referenceLogits(imported.cfg, v1Weights(imported.cfg, imported.stateDict), tokens, 'half'), 2e-5, 'imported hf');
    const file = path.join(tmp, 'from-half.gguf');
    exportGguf(imported.cfg, imported.stateDict, hfDir, file);
    const back = readGguf(file).tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(Array.from(back.data)).toEqual(Array.from(sd.get('layers.0.attention.wq.weight')!.data));
  });
});

describe('RoPE row permutation', () => {
  test('rotate-half of the permuted projection equals the permuted interleaved rotation, and the inverse undoes it', () => {
    const hd = 8;
    const rows = 3 * hd;
    const cols = 5;
    const w = randn(rows * cols, 3);
    const x = Float64Array.from(randn(cols, 4));
    const permuted = interleavedToHalfRows(w, rows, cols, hd);
    expect(Array.from(halfToInterleavedRows(permuted, rows, cols, hd))).toEqual(Array.from(w));
    for (const pos of [0, 1, 7]) {
      const viaInterleaved = rope(matvec(w, x, rows), pos, hd, 1e4, 'interleaved');
      const viaHalf = rope(matvec(permuted, x, rows), pos, hd, 1e4, 'half');
      // element j of head h under rotate-half is element 2j (j < hd/2) or 2(j - hd/2) + 1 under interleaved
      const reordered = new Float64Array(rows);
      for (let h = 0; h < rows / hd; h++) {
        for (let j = 0; j < hd / 2; j++) {
          reordered[h * hd + j] = viaInterleaved[h * hd + 2 * j];
          reordered[h * hd + hd / 2 + j] = viaInterleaved[h * hd + 2 * j + 1];
        }
      }
      expectClose(viaHalf, reordered, 1e-12, 1e-12, `position ${pos}`);
    }
  });
});

describe('HF folder', () => {
  test('a RoPE-scaled model: rope_scaling as transformers reads it, and the import gives the same config back', () => {
    for (const type of ['linear', 'yarn'] as const) {
      const cfg = resolveConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, max_seq_len: 256, rope_scaling: { type, factor: 4 } }, 'test');
      const hf = llamaConfig(cfg, { bos: 1, eos: 2 });
      expect(hf.rope_scaling).toEqual({ rope_type: type, factor: 4, original_max_position_embeddings: 256 });
      expect(hf.max_position_embeddings).toBe(1024);
      const back = configFromHf(hf, 'config.json');
      expect([back.max_seq_len, back.rope_scaling]).toEqual([256, { type, factor: 4 }]);
    }
    const plain = llamaConfig(resolveConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2 }, 'test'), { bos: 1, eos: 2 });
    expect([plain.rope_scaling, configFromHf(plain, 'config.json').rope_scaling]).toEqual([null, null]);
  });

  test('config, files, tensor names, no lm_head, tokenizer add_prefix_space aligned with tokenizer.json', () => {
    const cfg = resolveConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2 }, 'test');
    const sd = sampleStateDict(cfg);
    sd.delete('output.weight'); // either tied key is enough
    const out = path.join(tmp, 'hf-v1');
    expect(exportHf(cfg, sd, V1_TOKENIZER, out).join(' ')).toMatch(/permuted/);
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32, intermediate_size: 128, num_attention_heads: 4,
      num_key_value_heads: 2, num_hidden_layers: 2, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 512,
      vocab_size: 6400, tie_word_embeddings: true, torch_dtype: 'float32', bos_token_id: 1, eos_token_id: 2,
    });
    const { tensors, metadata } = readSafetensors(path.join(out, 'model.safetensors'));
    expect(metadata.format).toBe('pt');
    expect(tensors.size).toBe(2 + 9 * cfg.n_layers);
    expect(tensors.has('lm_head.weight')).toBe(false);
    expect([...tensors.keys()].slice(0, 4)).toEqual(['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight']);
    const get = (n: string) => bytesToF32(tensors.get(n)!, n, 'hf');
    expect(Array.from(get('model.layers.1.mlp.up_proj.weight'))).toEqual(Array.from(sd.get('layers.1.feed_forward.w3.weight')!.data));
    expect(Array.from(get('model.layers.1.self_attn.v_proj.weight'))).toEqual(Array.from(sd.get('layers.1.attention.wv.weight')!.data));
    const tokConfig = fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8');
    expect(tokConfig).toMatch(/"add_prefix_space": false/);
    expect(tokConfig).toMatch(/"model_max_length": 1000000000000000019884624838656/); // untouched bytes elsewhere
  });

  test('MoE models are written as a minimind-native folder under v1 names', () => {
    const cfg = resolveConfig({ dim: 32, n_layers: 1, n_heads: 4, n_kv_heads: 2, vocab_size: 64, use_moe: true }, 'test');
    const sd = sampleStateDict(cfg);
    const out = path.join(tmp, 'hf-moe');
    expect(exportHf(cfg, sd, null, out).join(' ')).toMatch(/MoE/);
    const back = readModelFolderStateDict(out);
    expect(back.cfg.use_moe).toBe(true);
    expect([...back.stateDict.keys()]).toEqual(v1TensorShapes(cfg).map(([n]) => n));
  });
});
