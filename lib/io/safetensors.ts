// safetensors files: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. Reading is streamed per tensor; writing goes to a temporary name, then renames.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../util/fsutil';

export type SafeDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'U16' | 'I64' | 'U8';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Uint8Array;
}

const DTYPE_SIZE: Record<SafeDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, U16: 2, I64: 8, U8: 1 };

export function readSafetensors(file: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) throw new Error(`${file}: too short for a safetensors file`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen <= 0 || 8 + headerLen > buf.length) throw new Error(`${file}: bad safetensors header length ${headerLen}`);
  let header: Record<string, { dtype: SafeDType; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: safetensors header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + headerLen;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: SafeDType; shape: number[]; data_offsets: [number, number] };
    const [start, end] = e.data_offsets;
    const expected = e.shape.reduce((a, b) => a * b, 1) * (DTYPE_SIZE[e.dtype] ?? NaN);
    if (!(end - start === expected) || base + end > buf.length) {
      throw new Error(`${file}: tensor ${name} (${e.dtype} [${e.shape}]) has inconsistent data offsets`);
    }
    // Copy so the typed views are aligned.
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: new Uint8Array(buf.subarray(base + start, base + end)) });
  }
  return { tensors, metadata };
}

export function writeSafetensors(file: string, tensors: Map<string, SafeTensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // align the data to 8 bytes
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(t.data, at);
    at += t.data.length;
  }
  writeFileAtomic(file, out);
}

export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function bytesToF32(t: SafeTensor, name: string, file: string): Float32Array {
  if (t.dtype === 'F32') return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
  if (t.dtype === 'BF16') {
    const u16 = new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2);
    const u32 = new Uint32Array(u16.length);
    for (let i = 0; i < u16.length; i++) u32[i] = u16[i] << 16;
    return new Float32Array(u32.buffer);
  }
  if (t.dtype === 'F16') {
    const u16 = new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2);
    return Float32Array.from(u16, halfToFloat);
  }
  throw new Error(`${file}: tensor ${name} has dtype ${t.dtype}; expected F32, F16 or BF16`);
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
