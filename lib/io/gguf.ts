// GGUF (llama.cpp's model file): writing a MiniMind model as a `llama`-architecture GGUF v3 file, and reading
// GGUF files back.
//
// Layout (little-endian): "GGUF", u32 version 3, u64 tensor count, u64 metadata count; the metadata as
// (string key, u32 value type, value); the tensor infos as (string name, u32 n_dims, u64 ne[n_dims] innermost
// first, u32 ggml type, u64 offset into the data section); padding to the alignment (general.alignment, default
// 32); the tensor data, each tensor starting on an aligned offset. Strings are a u64 byte length + UTF-8.
//
// What is written follows /work/shared/spec/gguf.md (checked against llama.cpp with exact f32 parity): the 23
// metadata keys in its order, tensors token_embd / blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
// ffn_norm, ffn_gate, ffn_up, ffn_down} / output_norm, each 2-D tensor as its PyTorch [out, in] row-major bytes
// (GGUF ne = [in, out]), norms always F32. The output head is tied, so `output.weight` is omitted and llama.cpp
// reuses token_embd. llama.cpp's NORM RoPE rotates adjacent pairs, exactly MiniMind v1's interleaved RoPE, so
// v1 wq/wk rows are written as they are; a rotate-half model (rope_style 'half') gets the inverse permutation.
import * as fs from 'node:fs';
import { contextLength, ffnHidden, headDim, LMConfig } from '../nn/config';
import { tempName } from '../util/fsutil';
import { halfToInterleavedRows, readTokenizerInfo } from './hf';
import { halfToFloat } from './safetensors';
import { canonicalStateDict, StateDict } from './state-dict';

/** GGUF metadata value types, by their numeric ids. */
const VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufScalarType = Exclude<(typeof VALUE_TYPES)[number], 'array'>;
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue =
  | { type: GgufScalarType; value: GgufScalar }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

/** ggml tensor types this module reads and writes. */
const GGML_TYPES = { F32: 0, F16: 1 } as const;
export type GgmlType = keyof typeof GGML_TYPES;

export interface GgufTensorIn {
  name: string;
  type: GgmlType;
  /** PyTorch order (outermost first); GGUF's ne is the reverse. */
  shape: number[];
  data: Float32Array;
}
export interface GgufTensor extends GgufTensorIn {
  /** GGUF dims, innermost first. */
  ne: number[];
  /** Offset in the data section. */
  offset: number;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;

const SCALAR_BYTES: Record<GgufScalarType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 0, u64: 8, i64: 8, f64: 8 };

// ---- f16 ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 → IEEE half bits, rounding to nearest even (overflow → ±inf, NaN stays NaN). */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15; // the half exponent field
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half: value / 2^-24 = (1.mant · 2^23) >> (14 - e)
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // a carry may round up into the exponent (or to inf)
  return sign | half;
}

// ---- writing ----

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: GgufScalarType, v: GgufScalar, key: string) {
    if (type === 'string') {
      if (typeof v !== 'string') throw new Error(`GGUF metadata ${key}: expected a string, got ${typeof v}`);
      this.string(v);
      return;
    }
    const b = Buffer.alloc(SCALAR_BYTES[type]);
    const n = v as number;
    switch (type) {
      case 'u8': b.writeUInt8(n); break;
      case 'i8': b.writeInt8(n); break;
      case 'u16': b.writeUInt16LE(n); break;
      case 'i16': b.writeInt16LE(n); break;
      case 'u32': b.writeUInt32LE(n); break;
      case 'i32': b.writeInt32LE(n); break;
      case 'f32': b.writeFloatLE(n); break;
      case 'f64': b.writeDoubleLE(n); break;
      case 'bool': b.writeUInt8(v ? 1 : 0); break;
      case 'u64': b.writeBigUInt64LE(BigInt(v as number | bigint)); break;
      case 'i64': b.writeBigInt64LE(BigInt(v as number | bigint)); break;
    }
    this.push(b);
  }
  pad(alignment: number) {
    this.push(Buffer.alloc((alignment - (this.length % alignment)) % alignment));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function tensorBytes(t: GgufTensorIn): Buffer {
  if (t.type === 'F32') return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const half = new Uint16Array(t.data.length);
  for (let i = 0; i < half.length; i++) half[i] = f32ToF16(t.data[i]);
  return Buffer.from(half.buffer);
}

/**
 * Writes a GGUF v3 file (to a temporary name, then renamed). `alignment` other than 32 is recorded as
 * general.alignment, which must then be among the metadata with the same value.
 */
export function writeGguf(file: string, metadata: [string, GgufValue][], tensors: GgufTensorIn[], alignment = GGUF_DEFAULT_ALIGNMENT): void {
  const declared = metadata.find(([k]) => k === 'general.alignment')?.[1].value;
  if ((declared ?? GGUF_DEFAULT_ALIGNMENT) !== alignment) {
    throw new Error(`GGUF ${file}: alignment ${alignment} needs general.alignment = ${alignment} in the metadata`);
  }
  const head = new ByteWriter();
  head.scalar('u32', 0x46554747, 'magic'); // "GGUF"
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.length);
  for (const [key, v] of metadata) {
    head.string(key);
    head.u32(VALUE_TYPES.indexOf(v.type));
    if (v.type !== 'array') {
      head.scalar(v.type, v.value, key);
      continue;
    }
    head.u32(VALUE_TYPES.indexOf(v.itemType));
    head.u64(v.value.length);
    for (const item of v.value) head.scalar(v.itemType, item, key);
  }
  let offset = 0;
  const padded = (n: number) => n + ((alignment - (n % alignment)) % alignment);
  for (const t of tensors) {
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`GGUF ${file}: tensor ${t.name} data does not match [${t.shape}]`);
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(GGML_TYPES[t.type]);
    head.u64(offset);
    offset = padded(offset + t.data.length * (t.type === 'F32' ? 4 : 2));
  }
  head.pad(alignment);
  const tmp = tempName(file);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, head.bytes());
    for (const t of tensors) {
      const b = tensorBytes(t);
      fs.writeSync(fd, b);
      fs.writeSync(fd, Buffer.alloc(padded(b.length) - b.length));
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

// ---- reading ----

/** Reads a GGUF file (versions 2 and 3; F32 and F16 tensors) with its metadata in file order. */
export function readGguf(file: string): { version: number; alignment: number; metadata: Map<string, GgufValue>; tensors: GgufTensor[] } {
  const buf = fs.readFileSync(file);
  let pos = 0;
  const need = (n: number, what: string) => {
    if (pos + n > buf.length) throw new Error(`${file}: truncated GGUF while reading ${what} at byte ${pos}`);
  };
  const u32 = (what: string) => (need(4, what), (pos += 4), buf.readUInt32LE(pos - 4));
  const u64 = (what: string) => {
    need(8, what);
    pos += 8;
    const v = buf.readBigUInt64LE(pos - 8);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: ${what} ${v} is too large`);
    return Number(v);
  };
  const string = (what: string) => {
    const n = u64(what);
    need(n, what);
    pos += n;
    return buf.toString('utf8', pos - n, pos);
  };
  const scalar = (type: GgufScalarType, key: string): GgufScalar => {
    if (type === 'string') return string(key);
    need(SCALAR_BYTES[type], key);
    const at = pos;
    pos += SCALAR_BYTES[type];
    switch (type) {
      case 'u8': return buf.readUInt8(at);
      case 'i8': return buf.readInt8(at);
      case 'u16': return buf.readUInt16LE(at);
      case 'i16': return buf.readInt16LE(at);
      case 'u32': return buf.readUInt32LE(at);
      case 'i32': return buf.readInt32LE(at);
      case 'f32': return buf.readFloatLE(at);
      case 'f64': return buf.readDoubleLE(at);
      case 'bool': return buf.readUInt8(at) !== 0;
      case 'u64': return buf.readBigUInt64LE(at);
      case 'i64': return buf.readBigInt64LE(at);
    }
  };
  const valueType = (key: string) => {
    const id = u32(key);
    const type = VALUE_TYPES[id];
    if (!type) throw new Error(`${file}: metadata ${key} has unknown value type ${id}`);
    return type;
  };

  if (buf.length < 4 || buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${file}: not a GGUF file (bad magic)`);
  pos = 4;
  const version = u32('version');
  if (version !== 2 && version !== 3) throw new Error(`${file}: GGUF version ${version} is not supported (2 or 3)`);
  const tensorCount = u64('tensor count');
  const kvCount = u64('metadata count');
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = string('metadata key');
    const type = valueType(key);
    if (type !== 'array') {
      metadata.set(key, { type, value: scalar(type, key) });
      continue;
    }
    const itemType = valueType(key);
    if (itemType === 'array') throw new Error(`${file}: metadata ${key} is a nested array (not supported)`);
    const n = u64(key);
    const items: GgufScalar[] = [];
    for (let j = 0; j < n; j++) items.push(scalar(itemType, key));
    metadata.set(key, { type: 'array', itemType, value: items });
  }
  const alignment = Number(metadata.get('general.alignment')?.value ?? GGUF_DEFAULT_ALIGNMENT);
  const infos: { name: string; ne: number[]; type: GgmlType; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = string('tensor name');
    const nDims = u32(name);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(u64(name));
    const typeId = u32(name);
    const type = (Object.keys(GGML_TYPES) as GgmlType[]).find((k) => GGML_TYPES[k] === typeId);
    if (!type) throw new Error(`${file}: tensor ${name} has ggml type ${typeId}; this reader handles F32 (0) and F16 (1)`);
    infos.push({ name, ne, type, offset: u64(name) });
  }
  const dataStart = pos + ((alignment - (pos % alignment)) % alignment);
  const tensors: GgufTensor[] = infos.map(({ name, ne, type, offset }) => {
    if (offset % alignment !== 0) throw new Error(`${file}: tensor ${name} offset ${offset} is not ${alignment}-aligned`);
    const numel = ne.reduce((a, b) => a * b, 1);
    const start = dataStart + offset;
    const bytes = numel * (type === 'F32' ? 4 : 2);
    if (start + bytes > buf.length) throw new Error(`${file}: tensor ${name} runs past the end of the file`);
    const raw = new Uint8Array(buf.subarray(start, start + bytes)); // an aligned copy
    const data = type === 'F32' ? new Float32Array(raw.buffer) : Float32Array.from(new Uint16Array(raw.buffer), halfToFloat);
    return { name, type, ne, shape: [...ne].reverse(), offset, data };
  });
  return { version, alignment, metadata, tensors };
}

// ---- MiniMind → llama GGUF ----

const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;
const TOKEN_UNUSED = 5;

/** The tokenizer.ggml.* metadata of a byte-level BPE tokenizer.json (gguf.md: model gpt2, pre gpt-2). */
export function ggufTokenizerMetadata(tokenizerDir: string, vocabSize: number): [string, GgufValue][] {
  const tok = readTokenizerInfo(tokenizerDir);
  const where = `${tokenizerDir}/tokenizer.json`;
  const model = tok.json.model as { type?: string; vocab?: Record<string, number>; merges?: (string | string[])[] } | undefined;
  if (model?.type !== 'BPE' || !model.vocab || !model.merges) throw new Error(`${where}: expected a BPE model with vocab and merges`);
  const pre = tok.json.pre_tokenizer as { type?: string; use_regex?: boolean; add_prefix_space?: boolean } | null;
  if (pre?.type !== 'ByteLevel' || pre.use_regex === false || pre.add_prefix_space) {
    throw new Error(`${where}: pre_tokenizer ${JSON.stringify(pre)} is not the GPT-2 ByteLevel one (use_regex true, ` +
      'add_prefix_space false) that tokenizer.ggml.pre "gpt-2" means');
  }
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TOKEN_NORMAL);
  const place = (text: string, id: number) => {
    if (id < 0 || id >= vocabSize) throw new Error(`${where}: token ${JSON.stringify(text)} has id ${id}, outside the model's vocab_size ${vocabSize}`);
    tokens[id] = text;
  };
  for (const [text, id] of Object.entries(model.vocab)) place(text, id);
  for (const a of (tok.json.added_tokens ?? []) as { id: number; content: string; special: boolean }[]) {
    place(a.content, a.id);
    types[a.id] = a.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
  }
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) { // embedding rows with no token: padding, as llama.cpp's converters name it
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_UNUSED;
    }
  }
  const merges = model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const ids: [string, GgufValue][] = [];
  if (tok.unk !== null) ids.push(['tokenizer.ggml.unknown_token_id', { type: 'u32', value: tok.unk }]);
  if (tok.bos !== null) ids.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: tok.bos }]);
  if (tok.eos !== null) ids.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: tok.eos }]);
  return [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
    ...ids,
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
}

/** v1 tensor name suffix → GGUF block tensor name. */
const GGUF_BLOCK_NAMES: [string, string][] = [
  ['attention_norm.weight', 'attn_norm.weight'], ['attention.wq.weight', 'attn_q.weight'], ['attention.wk.weight', 'attn_k.weight'],
  ['attention.wv.weight', 'attn_v.weight'], ['attention.wo.weight', 'attn_output.weight'], ['ffn_norm.weight', 'ffn_norm.weight'],
  ['feed_forward.w1.weight', 'ffn_gate.weight'], ['feed_forward.w3.weight', 'ffn_up.weight'], ['feed_forward.w2.weight', 'ffn_down.weight'],
];

/**
 * Writes a dense MiniMind as a llama GGUF file, with 2-D weights in `dtype` (norms stay F32) and the tokenizer
 * from `tokenizerDir`. Returns notes for the user.
 */
export function exportGguf(cfg: LMConfig, sd: StateDict, tokenizerDir: string, file: string,
  opts: { dtype?: 'f32' | 'f16'; name?: string } = {}): string[] {
  if (cfg.use_moe) {
    throw new Error('GGUF export of MoE models is not supported: llama.cpp\'s llama architecture has no MiniMind-style ' +
      'unweighted shared expert (export it with --format hf instead)');
  }
  const dtype = opts.dtype ?? 'f32';
  const { stateDict } = canonicalStateDict(cfg, sd, 'export');
  const hd = headDim(cfg);
  const notes: string[] = [];
  const tensors: GgufTensorIn[] = [];
  const add = (name: string, v1: string) => {
    let t = stateDict.get(v1)!;
    if (cfg.rope_style === 'half' && (v1.endsWith('attention.wq.weight') || v1.endsWith('attention.wk.weight'))) {
      t = { shape: t.shape, data: halfToInterleavedRows(t.data, t.shape[0], t.shape[1], hd) };
    }
    tensors.push({ name, shape: t.shape, data: t.data, type: t.shape.length === 2 && dtype === 'f16' ? 'F16' : 'F32' });
  };
  add('token_embd.weight', 'tok_embeddings.weight');
  for (let i = 0; i < cfg.n_layers; i++) for (const [v1, gguf] of GGUF_BLOCK_NAMES) add(`blk.${i}.${gguf}`, `layers.${i}.${v1}`);
  add('output_norm.weight', 'norm.weight');
  if (cfg.rope_style === 'half') notes.push('rotate-half model: wq/wk rows permuted to llama.cpp\'s adjacent-pair RoPE (not checked in llama.cpp)');
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: opts.name ?? 'minimind-v1' }],
    ['llama.context_length', { type: 'u32', value: contextLength(cfg) }],
    ['llama.embedding_length', { type: 'u32', value: cfg.dim }],
    ['llama.block_count', { type: 'u32', value: cfg.n_layers }],
    ['llama.feed_forward_length', { type: 'u32', value: ffnHidden(cfg) }],
    ['llama.attention.head_count', { type: 'u32', value: cfg.n_heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: cfg.n_kv_heads }],
    ['llama.rope.dimension_count', { type: 'u32', value: hd }],
    ['llama.rope.freq_base', { type: 'f32', value: cfg.rope_theta }],
    // A RoPE-scaled model: llama.cpp's scaling keys (its YaRN applies the same 0.1 ln F + 1 attention factor).
    ...(cfg.rope_scaling ? [
      ['llama.rope.scaling.type', { type: 'string', value: cfg.rope_scaling.type }],
      ['llama.rope.scaling.factor', { type: 'f32', value: cfg.rope_scaling.factor }],
      ['llama.rope.scaling.original_context_length', { type: 'u32', value: cfg.max_seq_len }],
    ] as [string, GgufValue][] : []),
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: cfg.norm_eps }],
    ['llama.vocab_size', { type: 'u32', value: cfg.vocab_size }],
    ['general.file_type', { type: 'u32', value: dtype === 'f16' ? 1 : 0 }], // ALL_F32 / MOSTLY_F16
    ...ggufTokenizerMetadata(tokenizerDir, cfg.vocab_size),
  ];
  writeGguf(file, metadata, tensors);
  return notes;
}
