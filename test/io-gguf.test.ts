// The GGUF container: write → read round trips of every metadata type, arrays and tensors with default and custom
// alignment (and the byte layout itself), f32 → f16 rounding, and the llama metadata + tokenizer that exportGguf
// writes for the real v1 tokenizer (key order and values from gguf.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/nn/config';
import { exportGguf, f32ToF16, GgufValue, readGguf, writeGguf } from '../lib/io/gguf';
import { halfToFloat } from '../lib/io/safetensors';
import { sampleStateDict } from './io-helpers';
import { randn } from './helpers';

const V1_TOKENIZER = path.join(__dirname, '..', '..', 'shared', 'fixtures', 'minimind', 'v1_2024-10-15_6861d1a');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-gguf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('f32ToF16', () => {
  test('every half value survives half → f32 → half', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const f = halfToFloat(h);
      if (Number.isNaN(f) ? !Number.isNaN(halfToFloat(f32ToF16(f))) : f32ToF16(f) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  test('rounds to nearest, ties to even, including subnormals and overflow', () => {
    for (const h of [0x0000, 0x0001, 0x0002, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe]) {
      const lo = halfToFloat(h);
      const hi = halfToFloat(h + 1);
      const mid = (lo + hi) / 2; // exact in f32 for these
      expect(f32ToF16(mid)).toBe(h % 2 === 0 ? h : h + 1);
      expect(f32ToF16(mid + (hi - lo) / 64)).toBe(h + 1);
      expect(f32ToF16(mid - (hi - lo) / 64)).toBe(h);
      expect(f32ToF16(-mid)).toBe((h % 2 === 0 ? h : h + 1) | 0x8000);
    }
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway past the largest half rounds to inf
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal → even (0)
    expect(f32ToF16(2 ** -25 * 1.001)).toBe(1);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
  });
});

describe('GGUF container', () => {
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['t.u8', { type: 'u8', value: 200 }], ['t.i8', { type: 'i8', value: -5 }], ['t.u16', { type: 'u16', value: 60000 }],
    ['t.i16', { type: 'i16', value: -30000 }], ['t.u32', { type: 'u32', value: 4000000000 }], ['t.i32', { type: 'i32', value: -2 }],
    ['t.f32', { type: 'f32', value: Math.fround(1e-5) }], ['t.bool', { type: 'bool', value: true }],
    ['t.u64', { type: 'u64', value: 2n ** 40n }], ['t.i64', { type: 'i64', value: -(2n ** 40n) }], ['t.f64', { type: 'f64', value: Math.PI }],
    ['t.unicode', { type: 'string', value: 'Ġt 你好 </s>' }],
    ['t.strings', { type: 'array', itemType: 'string', value: ['a', '', 'Ġb c'] }],
    ['t.ints', { type: 'array', itemType: 'i32', value: [1, -2, 3] }],
    ['t.empty', { type: 'array', itemType: 'f32', value: [] }],
  ];
  const tensors = [
    { name: 'a', type: 'F32' as const, shape: [3, 5], data: randn(15, 1) },
    { name: 'b.norm', type: 'F32' as const, shape: [7], data: randn(7, 2) },
    { name: 'c', type: 'F16' as const, shape: [2, 3, 4], data: Float32Array.from(randn(24, 3), (v) => halfToFloat(f32ToF16(v))) },
  ];

  for (const alignment of [32, 64]) {
    test(`write then read: metadata, tensor infos, data and ${alignment}-byte alignment`, () => {
      const file = path.join(tmp, `c${alignment}.gguf`);
      const meta: [string, GgufValue][] = alignment === 32 ? metadata : [...metadata, ['general.alignment', { type: 'u32', value: alignment }]];
      writeGguf(file, meta, tensors, alignment);
      const back = readGguf(file);
      expect(back.version).toBe(3);
      expect(back.alignment).toBe(alignment);
      expect([...back.metadata.entries()]).toEqual(meta);
      expect(back.tensors.map((t) => [t.name, t.type, t.shape, t.ne])).toEqual(tensors.map((t) => [t.name, t.type, t.shape, [...t.shape].reverse()]));
      back.tensors.forEach((t, i) => {
        expect(t.offset % alignment).toBe(0);
        expect(Array.from(t.data)).toEqual(Array.from(tensors[i].data));
      });
      // the byte layout: magic, version, counts; data section aligned; the file ends with the padded last tensor
      const buf = fs.readFileSync(file);
      expect(buf.toString('latin1', 0, 4)).toBe('GGUF');
      expect(buf.readUInt32LE(4)).toBe(3);
      expect(buf.readBigUInt64LE(8)).toBe(3n);
      expect(buf.readBigUInt64LE(16)).toBe(BigInt(meta.length));
      const last = back.tensors[2];
      const dataStart = buf.length - Math.ceil((24 * 2) / alignment) * alignment - last.offset;
      expect(dataStart % alignment).toBe(0);
      expect(buf.readUInt16LE(dataStart + last.offset)).toBe(f32ToF16(tensors[2].data[0]));
    });
  }

  test('a mismatched alignment, bad magic and truncation give clear errors', () => {
    expect(() => writeGguf(path.join(tmp, 'x.gguf'), metadata, tensors, 64)).toThrow(/general\.alignment/);
    const bad = path.join(tmp, 'bad.gguf');
    fs.writeFileSync(bad, 'GGML....');
    expect(() => readGguf(bad)).toThrow(/bad\.gguf: not a GGUF file/);
    const good = path.join(tmp, 'c32.gguf');
    fs.writeFileSync(bad, fs.readFileSync(good).subarray(0, 100));
    expect(() => readGguf(bad)).toThrow(/bad\.gguf: truncated/);
  });
});

describe('exportGguf metadata for the v1 tokenizer', () => {
  const cfg = resolveConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2 }, 'test');
  const sd = sampleStateDict(cfg);
  const tokenizer = JSON.parse(fs.readFileSync(path.join(V1_TOKENIZER, 'tokenizer.json'), 'utf8'));

  test('the 23 keys of gguf.md in order, llama sizes, tokens/merges/types, tensors and F16 norms kept F32', () => {
    const file = path.join(tmp, 'v1.gguf');
    exportGguf(cfg, sd, V1_TOKENIZER, file, { dtype: 'f16', name: 'minimind-v1' });
    const { metadata, tensors } = readGguf(file);
    expect([...metadata.keys()]).toEqual(['general.architecture', 'general.name', 'llama.context_length', 'llama.embedding_length',
      'llama.block_count', 'llama.feed_forward_length', 'llama.attention.head_count', 'llama.attention.head_count_kv',
      'llama.rope.dimension_count', 'llama.rope.freq_base', 'llama.attention.layer_norm_rms_epsilon', 'llama.vocab_size',
      'general.file_type', 'tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type',
      'tokenizer.ggml.merges', 'tokenizer.ggml.unknown_token_id', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id',
      'tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_eos_token']);
    const v = (k: string) => metadata.get(k)!;
    expect(v('general.architecture')).toEqual({ type: 'string', value: 'llama' });
    expect(v('llama.context_length')).toEqual({ type: 'u32', value: 512 });
    expect(v('llama.embedding_length')).toEqual({ type: 'u32', value: 32 });
    expect(v('llama.block_count')).toEqual({ type: 'u32', value: 2 });
    expect(v('llama.feed_forward_length')).toEqual({ type: 'u32', value: 128 });
    expect(v('llama.attention.head_count')).toEqual({ type: 'u32', value: 4 });
    expect(v('llama.attention.head_count_kv')).toEqual({ type: 'u32', value: 2 });
    expect(v('llama.rope.dimension_count')).toEqual({ type: 'u32', value: 8 });
    expect(v('llama.rope.freq_base')).toEqual({ type: 'f32', value: 10000 });
    expect(v('llama.attention.layer_norm_rms_epsilon')).toEqual({ type: 'f32', value: Math.fround(1e-5) });
    expect(v('llama.vocab_size')).toEqual({ type: 'u32', value: 6400 });
    expect(v('general.file_type')).toEqual({ type: 'u32', value: 1 });
    expect(v('tokenizer.ggml.model')).toEqual({ type: 'string', value: 'gpt2' });
    expect(v('tokenizer.ggml.pre')).toEqual({ type: 'string', value: 'gpt-2' });
    const array = (k: string, itemType: string) => {
      const a = v(k);
      if (a.type !== 'array' || a.itemType !== itemType) throw new Error(`${k} is not an array of ${itemType}`);
      return a;
    };
    const tokens = array('tokenizer.ggml.tokens', 'string');
    const types = array('tokenizer.ggml.token_type', 'i32');
    const merges = array('tokenizer.ggml.merges', 'string');
    expect(tokens.value.length).toBe(6400);
    expect(tokens.value.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    for (const [text, id] of Object.entries(tokenizer.model.vocab as Record<string, number>)) if (tokens.value[id] !== text) throw new Error(`token ${id}`);
    expect(types.value.slice(0, 4)).toEqual([3, 3, 3, 1]);
    expect(types.value.filter((t) => t !== 1).length).toBe(3);
    expect(merges.value).toEqual(tokenizer.model.merges);
    expect(merges.value.length).toBe(6141);
    for (const [k, id] of [['unknown', 0], ['bos', 1], ['eos', 2]] as const) expect(v(`tokenizer.ggml.${k}_token_id`)).toEqual({ type: 'u32', value: id });
    expect(v('tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: false });
    expect(v('tokenizer.ggml.add_eos_token')).toEqual({ type: 'bool', value: false });

    expect(tensors.length).toBe(2 + 9 * cfg.n_layers); // output.weight omitted: tied to token_embd
    expect(tensors.map((t) => t.name).slice(0, 11)).toEqual(['token_embd.weight', 'blk.0.attn_norm.weight', 'blk.0.attn_q.weight',
      'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight', 'blk.0.ffn_norm.weight', 'blk.0.ffn_gate.weight',
      'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight', 'blk.1.attn_norm.weight']);
    for (const t of tensors) expect(t.type).toBe(t.shape.length === 1 ? 'F32' : 'F16');
    const down = tensors.find((t) => t.name === 'blk.1.ffn_down.weight')!;
    expect(down.ne).toEqual([128, 32]); // PyTorch [dim, hidden] → ne [hidden, dim]
    const w2 = sd.get('layers.1.feed_forward.w2.weight')!.data;
    expect(Array.from(down.data)).toEqual(Array.from(w2, (x) => halfToFloat(f32ToF16(x))));
    const norm = tensors.find((t) => t.name === 'output_norm.weight')!;
    expect(Array.from(norm.data)).toEqual(Array.from(sd.get('norm.weight')!.data));
  });

  test('a RoPE-scaled model gets llama.cpp\'s scaling keys and its scaled context length', () => {
    const scaled = resolveConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, rope_scaling: { type: 'yarn', factor: 2 } }, 'test');
    const file = path.join(tmp, 'yarn.gguf');
    exportGguf(scaled, sampleStateDict(scaled), V1_TOKENIZER, file, { dtype: 'f32' });
    const { metadata } = readGguf(file);
    expect(metadata.get('llama.context_length')).toEqual({ type: 'u32', value: 1024 });
    expect(metadata.get('llama.rope.scaling.type')).toEqual({ type: 'string', value: 'yarn' });
    expect(metadata.get('llama.rope.scaling.factor')).toEqual({ type: 'f32', value: 2 });
    expect(metadata.get('llama.rope.scaling.original_context_length')).toEqual({ type: 'u32', value: 512 });
  });

  test('MoE models and non-GPT-2 pre-tokenizers are refused with a reason', () => {
    const moe = resolveConfig({ dim: 32, n_layers: 1, n_heads: 4, n_kv_heads: 2, use_moe: true }, 'test');
    expect(() => exportGguf(moe, sd, V1_TOKENIZER, path.join(tmp, 'moe.gguf'))).toThrow(/MoE/);
    const dir = path.join(tmp, 'tok-meta');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ ...tokenizer, pre_tokenizer: { type: 'Metaspace' } }));
    expect(() => exportGguf(cfg, sd, dir, path.join(tmp, 'meta.gguf'))).toThrow(/Metaspace/);
  });
});
