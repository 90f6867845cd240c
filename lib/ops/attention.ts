// Causal multi-head attention with grouped KV heads (GQA), flash-style, with autograd.
//   q [B, T, NH, HD], k and v [B, Tk, NKV, HD]  ->  out [B, T, NH, HD]
// MiniMind's layout before its transpose. Query head h uses KV head floor(h / (NH / NKV)); scores are scaled by
// 1/sqrt(HD). Causal (the default): query i sits at absolute position Tk - T + i (a KV cache holds the first
// Tk - T keys) and attends keys 0 .. Tk - T + i. The forward keeps the fp32 logsumexp [B, NH, T] for the
// backward, which recomputes the probabilities tile by tile (native/cpu/attention.cc).
// Decoding (a few queries, no gradient) takes a dedicated kernel (native/cpu/attention_decode.cc) that reads
// each KV head's cache once for all its queries, instead of the training kernel's 64-query tiles.
// On cuda (native/cuda/kernels/attention.cu): bf16 q, k, v and out, causal self-attention only (Tk = T, no KV
// cache), HD 32, 48, 64, 96 or 128 (tensor-core tiles); the backward accumulates bf16 dq, dk, dv. Without a
// gradient, queries against a longer KV cache (Tk > T) or a few queries (the decode rule above) take the
// cuda decode kernel (native/cuda/kernels/attention_decode.cu; any HD the CPU accepts).
import { gradOf, needsGrad, record } from '../autograd/tape';
import { asBf16, assertFloat, gradSink } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { kernels, sameDevice } from './kernels';

/** Which vector code the CPU kernel runs: 'best' (default) or a narrower one, for tests and benches. */
export type VectorIsa = 'best' | 'portable' | 'avx2' | 'avx512';
const ISA_CODE: Record<VectorIsa, number> = { best: 0, portable: 1, avx2: 2, avx512: 3 };

export interface AttentionOptions {
  causal?: boolean;
  isa?: VectorIsa;
  /** Without a gradient: true/false forces the decode kernel or the flash kernel (tests); default T <= 4. */
  decode?: boolean;
}

interface AttentionKernels {
  attentionForward(out: number, lse: number, q: number, k: number, v: number, B: number, T: number, Tk: number,
    NH: number, NKV: number, HD: number, causal: boolean, isa: number): void;
  attentionBackward(dq: number, dk: number, dv: number, dout: number, q: number, k: number, v: number, out: number,
    lse: number, B: number, T: number, Tk: number, NH: number, NKV: number, HD: number, causal: boolean,
    isa: number): void;
  attentionDecode(out: number, q: number, k: number, v: number, B: number, T: number, Tk: number, NH: number,
    NKV: number, HD: number, causal: boolean, isa: number): void;
}

/** Up to this many queries per sequence, a forward without gradient runs the decode kernel. */
export const DECODE_MAX_QUERIES = 4;

/** The largest head dimension the kernel supports (native/cpu/attention.h kMaxHeadDim). */
export const MAX_HEAD_DIM = 128;

interface Dims {
  B: number;
  T: number;
  Tk: number;
  NH: number;
  NKV: number;
  HD: number;
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Dims {
  const where = 'attention (lib/ops/attention.ts)';
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    assertFloat(`${where}: ${name}`, t);
    if (t.ndim !== 4) throw new Error(`${where}: ${name} must be [B, T, heads, HD], got ${t.describe()}`);
  }
  sameDevice(where, q, k, v);
  const [B, T, NH, HD] = q.shape;
  const [Bk, Tk, NKV, HDk] = k.shape;
  if (Bk !== B || HDk !== HD || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new Error(`${where}: q ${q.describe()}, k ${k.describe()} and v ${v.describe()} disagree on B or HD, ` +
      'or k and v differ');
  }
  if (NKV === 0 || NH % NKV !== 0) throw new Error(`${where}: NH=${NH} is not a multiple of NKV=${NKV}`);
  if (HD % 16 !== 0 || HD === 0 || HD > MAX_HEAD_DIM) {
    throw new Error(`${where}: head dim ${HD} must be a multiple of 16 in [16, ${MAX_HEAD_DIM}]`);
  }
  if (T === 0 || Tk === 0) throw new Error(`${where}: empty sequence (T=${T}, Tk=${Tk})`);
  if (causal && Tk < T) throw new Error(`${where}: causal attention needs Tk >= T, got T=${T}, Tk=${Tk}`);
  return { B, T, Tk, NH, NKV, HD };
}

function attentionKernels(t: Tensor): AttentionKernels {
  const k = kernels<Partial<AttentionKernels>>(t.device);
  if (!k.attentionForward || !k.attentionBackward || !k.attentionDecode) {
    throw new Error(`attention (lib/ops/attention.ts): no attention kernel for device ${t.device}`);
  }
  return k as AttentionKernels;
}

/** softmax(q k^T / sqrt(HD) [+ causal mask]) v, per head; see the file comment for shapes. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const causal = opts.causal ?? true;
  const isa = ISA_CODE[opts.isa ?? 'best'];
  const dims = checkInputs(q, k, v, causal);
  if (q.device === 'cuda') return attentionCuda(q, k, v, dims, causal, opts.decode);
  const { B, T, Tk, NH, NKV, HD } = dims;
  const kern = attentionKernels(q);
  const out = Tensor.empty([B, T, NH, HD], 'f32', q.device, false);
  if ((opts.decode ?? T <= DECODE_MAX_QUERIES) && !needsGrad(q, k, v)) {
    kern.attentionDecode(out.ptr, q.ptr, k.ptr, v.ptr, B, T, Tk, NH, NKV, HD, causal, isa);
    return out;
  }
  const lse = Tensor.empty([B, NH, T], 'f32', q.device, false);
  kern.attentionForward(out.ptr, lse.ptr, q.ptr, k.ptr, v.ptr, B, T, Tk, NH, NKV, HD, causal, isa);
  if (needsGrad(q, k, v)) {
    record(out, () => {
      // The kernel produces all three gradients; inputs that need none get a scratch buffer.
      const gradFor = (t: Tensor) => (t.requiresGrad ? gradOf(t) : Tensor.zeros(t.shape, 'f32', t.device));
      const dq = gradFor(q), dk = gradFor(k), dv = gradFor(v);
      kern.attentionBackward(dq.ptr, dk.ptr, dv.ptr, out.grad!.ptr, q.ptr, k.ptr, v.ptr, out.ptr, lse.ptr,
        B, T, Tk, NH, NKV, HD, causal, isa);
    });
  }
  return out;
}

function attentionCuda(q: Tensor, k: Tensor, v: Tensor, dims: Dims, causal: boolean, decode?: boolean): Tensor {
  const { B, T, Tk, NH, NKV, HD } = dims;
  const where = 'attention (lib/ops/attention.ts) on cuda';
  if (!needsGrad(q, k, v) && (decode ?? (Tk !== T || T <= DECODE_MAX_QUERIES))) {
    const out = Tensor.empty([B, T, NH, HD], 'bf16', 'cuda', false);
    cudaKernels().attentionDecode(out.ptr, asBf16(q).ptr, asBf16(k).ptr, asBf16(v).ptr, B, T, Tk, NH, NKV, HD,
      1 / Math.sqrt(HD), causal);
    return out;
  }
  if (!causal || Tk !== T) throw new Error(`${where}: only causal self-attention (Tk = T) is supported, got T=${T}, Tk=${Tk}`);
  if (![32, 48, 64, 96, 128].includes(HD)) throw new Error(`${where}: head dim ${HD} must be 32, 48, 64, 96 or 128 on cuda`);
  const scale = 1 / Math.sqrt(HD);
  const [qb, kb, vb] = [asBf16(q), asBf16(k), asBf16(v)];
  const out = Tensor.empty([B, T, NH, HD], 'bf16', 'cuda', false);
  const lse = Tensor.empty([B, NH, T], 'f32', 'cuda', false);
  cudaKernels().attentionForward(out.ptr, lse.ptr, qb.ptr, kb.ptr, vb.ptr, B, T, NH, NKV, HD, scale);
  if (needsGrad(q, k, v)) {
    record(out, () => {
      const [dq, dk, dv] = [gradSink(q, 'bf16'), gradSink(k, 'bf16'), gradSink(v, 'bf16')];
      cudaKernels().attentionBackward(dq.ptr, dk.ptr, dv.ptr, asBf16(out.grad!).ptr, out.ptr, lse.ptr, qb.ptr, kb.ptr,
        vb.ptr, B, T, NH, NKV, HD, scale);
      for (const d of [dq, dk, dv]) d.finish();
    });
  }
  return out;
}
