// Element types and devices that tensors can have.
export type DType = 'f32' | 'bf16' | 'f16' | 'i32' | 'u16';
export type Device = 'cpu' | 'cuda';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, u16: 2 };

/** The host-side typed array that holds a dtype's values (bf16 and f16 are kept as raw 16-bit patterns). */
export type HostArray = Float32Array | Int32Array | Uint16Array;

export function hostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(length);
    case 'i32':
      return new Int32Array(length);
    case 'u16':
    case 'bf16':
    case 'f16':
      return new Uint16Array(length);
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** bf16 <-> f32 conversions on the host (round to nearest even), for uploads and checks. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const u32 = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = u32[i];
    if ((v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0) out[i] = (v >>> 16) | 0x40; // keep NaN a NaN
    else out[i] = (v + 0x7fff + ((v >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function bf16ToF32(x: Uint16Array): Float32Array {
  const u32 = new Uint32Array(x.length);
  for (let i = 0; i < x.length; i++) u32[i] = x[i] << 16;
  return new Float32Array(u32.buffer);
}
