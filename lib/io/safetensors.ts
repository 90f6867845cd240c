// safetensors files: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. Reading is per tensor (SafetensorsFile); writing goes to a temporary name, then renames.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../util/fsutil';

export type SafeDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'U16' | 'I64' | 'U8';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Uint8Array;
}

const DTYPE_SIZE: Record<SafeDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, U16: 2, I64: 8, U8: 1 };

/** Where one tensor lies in a safetensors file. */
export interface SafeEntry {
  dtype: SafeDType;
  shape: number[];
  /** Byte offsets of the data in the file. */
  start: number;
  end: number;
}

/**
 * An open safetensors file: the header is parsed and checked on open; tensors are read one at a time, so a
 * loader never holds the whole file (or a second copy of it) in memory. Close it when done.
 */
export class SafetensorsFile {
  readonly entries = new Map<string, SafeEntry>();
  readonly metadata: Record<string, string> = {};
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'r');
    try {
      this.parseHeader();
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  private parseHeader(): void {
    const size = fs.fstatSync(this.fd).size;
    const file = this.file;
    if (size < 8) throw new Error(`${file}: too short for a safetensors file`);
    const lenBytes = Buffer.alloc(8);
    fs.readSync(this.fd, lenBytes, 0, 8, 0);
    const headerLen = Number(lenBytes.readBigUInt64LE(0));
    if (headerLen <= 0 || 8 + headerLen > size) throw new Error(`${file}: bad safetensors header length ${headerLen}`);
    const headerBytes = Buffer.alloc(headerLen);
    fs.readSync(this.fd, headerBytes, 0, headerLen, 8);
    let header: Record<string, { dtype: SafeDType; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch (e) {
      throw new Error(`${file}: safetensors header is not JSON (${(e as Error).message})`);
    }
    const base = 8 + headerLen;
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') {
        Object.assign(this.metadata, entry);
        continue;
      }
      const e = entry as { dtype: SafeDType; shape: number[]; data_offsets: [number, number] };
      const [start, end] = e.data_offsets;
      const expected = e.shape.reduce((a, b) => a * b, 1) * (DTYPE_SIZE[e.dtype] ?? NaN);
      if (!(end - start === expected) || base + end > size) {
        throw new Error(`${file}: tensor ${name} (${e.dtype} [${e.shape}]) has inconsistent data offsets`);
      }
      this.entries.set(name, { dtype: e.dtype, shape: e.shape, start: base + start, end: base + end });
    }
  }

  /** One tensor, read into a new (aligned) buffer. */
  read(name: string): SafeTensor {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape, data: this.readBytes(name, 0, new Uint8Array(e.end - e.start)) };
  }

  /** Bytes [from, from + into.length) of a tensor's data, read into `into` (which is returned). */
  readBytes(name: string, from: number, into: Uint8Array): Uint8Array {
    const e = this.entry(name);
    if (from < 0 || e.start + from + into.length > e.end) throw new Error(`${this.file}: read past the end of tensor ${name}`);
    for (let done = 0; done < into.length;) {
      const n = fs.readSync(this.fd, into, done, into.length - done, e.start + from + done);
      if (n <= 0) throw new Error(`${this.file}: unexpected end of file in tensor ${name}`);
      done += n;
    }
    return into;
  }

  private entry(name: string): SafeEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.file}: no tensor ${name}`);
    return e;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export function readSafetensors(file: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const f = new SafetensorsFile(file);
  try {
    const tensors = new Map<string, SafeTensor>();
    for (const name of f.entries.keys()) tensors.set(name, f.read(name));
    return { tensors, metadata: f.metadata };
  } finally {
    f.close();
  }
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
