// Rotary position embeddings (RoPE) with autograd.
//   ropeTable(maxT, HD, theta): persistent cos/sin tables [maxT, HD/2], fp32, computed exactly as MiniMind's
//     precompute_pos_cis (angle(p, i) = p * theta^(-2i/HD), every step rounded to float32).
//   ropeTable(maxT, HD, theta, scaling): the same for a context stretched by scaling.factor F beyond the
//     original length L the model was trained on (see scaledRopeTable).
//   rope(x [B, T, H, HD], table, style, offset): rotates each pair at positions offset .. offset + T - 1.
//     'interleaved': pairs (x[2i], x[2i+1]), MiniMind v1's complex form;
//     'half':        pairs (x[i], x[i + HD/2]), MiniMind2 / Llama rotate_half.
//   The backward rotates the gradient by the negative angle. ropeInPlace_ rotates without autograd (KV cache).
// On cuda (native/cuda/kernels/rope.cu) x is read as bf16 and the output is bf16; the tables are uploaded to the
// device once per table, and the backward accumulates the inverse rotation straight into x's gradient.
import { gradOf, needsGrad, noGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { accumulate } from './elementwise';
import { kernels } from './kernels';

export type RopeStyle = 'interleaved' | 'half';

/**
 * RoPE scaling (config.json's rope_scaling): 'linear' interpolates positions (p / F); 'yarn' interpolates only
 * the low frequencies and scales the attention (YaRN, Peng et al. 2023). factor 1 is no scaling.
 */
export interface RopeScaling {
  type: 'linear' | 'yarn';
  factor: number;
}
const STYLE_CODE: Record<RopeStyle, number> = { interleaved: 0, half: 1 };

interface RopeKernels {
  ropeTable(cos: number, sin: number, maxT: number, headDim: number, theta: number): void;
  rope(out: number, x: number, cos: number, sin: number, B: number, T: number, H: number, HD: number,
    offset: number, style: number, inverse: boolean): void;
}

export interface RopeTable {
  /** cos(angle(p, i)) as [maxT, headDim / 2]. */
  cos: Tensor;
  /** sin(angle(p, i)) as [maxT, headDim / 2]. */
  sin: Tensor;
  maxT: number;
  headDim: number;
  theta: number;
}

const where = 'rope (lib/ops/rope.ts)';

/**
 * The cos/sin tables for positions 0 .. maxT-1 (persistent, on the CPU; free with disposeRopeTable). With
 * `scaling`, `originalMaxT` is the context the model was trained on (YaRN picks the frequencies to keep by it).
 */
export function ropeTable(maxT: number, headDim: number, theta: number, scaling: RopeScaling | null = null,
  originalMaxT = maxT): RopeTable {
  if (!Number.isInteger(maxT) || maxT < 1) throw new Error(`${where}: maxT must be a positive integer, got ${maxT}`);
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new Error(`${where}: headDim must be a positive even integer, got ${headDim}`);
  }
  if (!(theta > 0)) throw new Error(`${where}: theta must be positive, got ${theta}`);
  const cos = Tensor.persistent([maxT, headDim / 2]);
  const sin = Tensor.persistent([maxT, headDim / 2]);
  cos.name = 'rope.cos';
  sin.name = 'rope.sin';
  if (!scaling || scaling.factor === 1) kernels<RopeKernels>('cpu').ropeTable(cos.ptr, sin.ptr, maxT, headDim, theta);
  else {
    const scaled = scaledRopeTable(maxT, headDim, theta, scaling, originalMaxT);
    cos.upload(scaled.cos);
    sin.upload(scaled.sin);
  }
  return { cos, sin, maxT, headDim, theta };
}

/** Frequency i's rotations per position as MiniMind rounds it: 1 / theta^(2i/HD), each step in float32. */
function frequency(i: number, headDim: number, theta: number): number {
  const f = Math.fround;
  return f(1 / f(Math.pow(theta, f(f(2 * i) / headDim))));
}

/**
 * Scaled tables as arrays [maxT * HD/2]. Frequency i (f_i = theta^(-2i/HD)) turns at angle(p, i) = p * s_i * f_i:
 *   linear: s_i = 1 / F for every i, i.e. position interpolation: the angle at p is the plain angle at p / F.
 *   yarn:   s_i blends extrapolation (s = 1) and interpolation (s = 1 / F) by how many turns frequency i makes over
 *           the original context L: r(d) = HD·ln(L / (2π·d)) / (2·ln theta) is the index at which d turns fit in L;
 *           indices below lo = floor(r(32)) (fast, ≥ 32 turns) keep s = 1, those above hi = ceil(r(1)) (slow, < 1 turn)
 *           get 1 / F, linear in between; cos and sin are multiplied by mscale = 0.1·ln F + 1 (the attention
 *           temperature, which scales the logits q·k by mscale²).
 * Each step is rounded to float32 as the plain table is (and as HF computes them): linear rounds p / F, so the row
 * at p = kF is exactly the plain row k; yarn rounds s_i·f_i once per frequency.
 */
export function scaledRopeTable(maxT: number, headDim: number, theta: number, scaling: RopeScaling,
  originalMaxT: number): { cos: Float32Array; sin: Float32Array } {
  const F = scaling.factor;
  if (!(F >= 1)) throw new Error(`${where}: the scaling factor must be ≥ 1, got ${F}`);
  if (scaling.type !== 'linear' && scaling.type !== 'yarn') {
    throw new Error(`${where}: unknown RoPE scaling type ${JSON.stringify(scaling.type)}`);
  }
  const f = Math.fround;
  const half = headDim / 2;
  const cos = new Float32Array(maxT * half);
  const sin = new Float32Array(maxT * half);
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) {
      const rate = frequency(i, headDim, theta);
      for (let p = 0; p < maxT; p++) {
        const angle = f(f(p / F) * rate);
        cos[p * half + i] = Math.cos(angle);
        sin[p * half + i] = Math.sin(angle);
      }
    }
    return { cos, sin };
  }
  const turnsIndex = (turns: number) => (headDim * Math.log(originalMaxT / (turns * 2 * Math.PI))) / (2 * Math.log(theta));
  const lo = Math.max(Math.floor(turnsIndex(32)), 0);
  let hi = Math.min(Math.ceil(turnsIndex(1)), headDim - 1);
  if (hi === lo) hi += 0.001; // a ramp of (almost) zero width, without dividing by zero
  const mscale = 0.1 * Math.log(F) + 1;
  for (let i = 0; i < half; i++) {
    const interpolated = Math.min(Math.max((i - lo) / (hi - lo), 0), 1);
    const rate = f(frequency(i, headDim, theta) * (interpolated / F + (1 - interpolated)));
    for (let p = 0; p < maxT; p++) {
      const angle = f(p * rate);
      cos[p * half + i] = mscale * Math.cos(angle);
      sin[p * half + i] = mscale * Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Device copies of CPU tables, made on first use on cuda. */
const deviceTables = new Map<RopeTable, { cos: Tensor; sin: Tensor }>();

function cudaTable(table: RopeTable): { cos: Tensor; sin: Tensor } {
  if (table.cos.device === 'cuda') return table;
  let copy = deviceTables.get(table);
  if (!copy) {
    copy = {
      cos: Tensor.from(table.cos.toArray(), table.cos.shape, 'f32', 'cuda', true),
      sin: Tensor.from(table.sin.toArray(), table.sin.shape, 'f32', 'cuda', true),
    };
    deviceTables.set(table, copy);
  }
  return copy;
}

export function disposeRopeTable(table: RopeTable): void {
  table.cos.dispose();
  table.sin.dispose();
  const copy = deviceTables.get(table);
  if (copy) {
    copy.cos.dispose();
    copy.sin.dispose();
    deviceTables.delete(table);
  }
}

function check(x: Tensor, table: RopeTable, offset: number): [number, number, number, number] {
  assertFloat(where, x);
  if (x.ndim !== 4) throw new Error(`${where}: x must be [B, T, H, HD], got ${x.describe()}`);
  // A CPU table serves cuda too (through its device copy).
  if (x.device === 'cpu' && table.cos.device !== 'cpu') throw new Error(`${where}: x on ${x.device}, table on ${table.cos.device}`);
  const [B, T, H, HD] = x.shape;
  if (HD !== table.headDim) throw new Error(`${where}: x head dim ${HD} but the table is for ${table.headDim}`);
  if (!Number.isInteger(offset) || offset < 0 || offset + T > table.maxT) {
    throw new Error(`${where}: positions ${offset}..${offset + T - 1} outside the table (maxT=${table.maxT})`);
  }
  return [B, T, H, HD];
}

function run(out: Tensor, x: Tensor, table: RopeTable, style: RopeStyle, offset: number, inverse: boolean): void {
  const [B, T, H, HD] = check(x, table, offset);
  kernels<RopeKernels>(x.device).rope(out.ptr, x.ptr, table.cos.ptr, table.sin.ptr, B, T, H, HD, offset,
    STYLE_CODE[style], inverse);
}

/** x rotated at positions offset .. offset + T - 1 (a new tensor; differentiable). */
export function rope(x: Tensor, table: RopeTable, style: RopeStyle, offset = 0): Tensor {
  if (x.device === 'cuda') return ropeCuda(x, table, style, offset);
  const out = Tensor.empty(x.shape, 'f32', x.device, false);
  run(out, x, table, style, offset, false);
  if (needsGrad(x)) {
    record(out, () => {
      const dx = Tensor.empty(x.shape, 'f32', x.device, false);
      run(dx, out.grad!, table, style, offset, true);
      accumulate(gradOf(x), dx);
    });
  }
  return out;
}

/** Rotates x in place (no autograd): for keys written into a KV cache during generation. */
export function ropeInPlace_(x: Tensor, table: RopeTable, style: RopeStyle, offset = 0): Tensor {
  if (x.device === 'cuda') {
    if (x.dtype !== 'bf16') throw new Error(`${where}: ropeInPlace_ on cuda needs a bf16 tensor, got ${x.describe()}`);
    return x.copyFrom(noGrad(() => ropeCuda(x, table, style, offset)));
  }
  run(x, x, table, style, offset, false);
  return x;
}

/** rope on cuda: the kernel's `backward` flag accumulates R^T dy into the gradient. */
function ropeCuda(x: Tensor, table: RopeTable, style: RopeStyle, offset: number): Tensor {
  const [B, T, H, HD] = check(x, table, offset);
  const { cos, sin } = cudaTable(table);
  const interleaved = style === 'interleaved';
  const out = Tensor.empty(x.shape, 'bf16', 'cuda', false);
  cudaKernels().rope(out.ptr, asBf16(x).ptr, cos.ptr, sin.ptr, B, T, H, HD, offset, interleaved, false);
  if (needsGrad(x)) {
    record(out, () => {
      const dx = gradSink(x, 'bf16');
      cudaKernels().rope(dx.ptr, asBf16(out.grad!).ptr, cos.ptr, sin.ptr, B, T, H, HD, offset, interleaved, true);
      dx.finish();
    });
  }
  return out;
}
