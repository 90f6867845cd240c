// The CUDA kernels (native/cuda/kernels/) on the real GPU at MiniMind's shapes (B*T = 4096 tokens: B=8, T=512;
// dim 512, 8 query heads of 64 dims sharing 2 KV heads, FFN hidden 1408, vocabulary 6400; MoE: 4 experts, top-2;
// AdamW over the 26M parameters), reported against the GPU's peak: bf16 tensor FLOP/s for the compute-bound
// kernels (GEMM, attention: `flops`), HBM bandwidth for the memory-bound ones (`bytes`: what must move at least).
//
// The peak: by device name from GPU_PEAKS (datasheet numbers: bf16 dense tensor FLOP/s, HBM bandwidth); for a GPU
// not in the table it is measured: a long 8192^3 GEMM (cuBLASLt when it loads) for FLOP/s and a 1 GiB
// device-to-device copy for bandwidth, which understates the datasheet peak a little (so % of peak reads high).
//
// Without a GPU (no CUDA build, no device, or device 'cuda' emulated) there are no cases: the emulator's speed
// means nothing. test/cuda-moe.test.ts builds the list for a described device and runs it at tiny shapes on the
// emulator, so the list cannot break silently.
import { native } from '../../lib/native';
import { CudaKernels, SUM_SQUARES_SCRATCH, cudaDevice } from '../../lib/cuda/kernels';
import { KernelCase, medianSeconds } from '../harness';

/** Datasheet peaks by device name (the first match wins; CUDA names look like "NVIDIA H100 80GB HBM3"). */
export const GPU_PEAKS: { pattern: RegExp; bf16Tflops: number; hbmTbps: number }[] = [
  { pattern: /H200/, bf16Tflops: 989, hbmTbps: 4.8 },
  { pattern: /H100.*PCIe/, bf16Tflops: 756, hbmTbps: 2.0 },
  { pattern: /H100/, bf16Tflops: 989, hbmTbps: 3.35 }, // SXM
  { pattern: /A100/, bf16Tflops: 312, hbmTbps: 2.0 },
];

export interface GpuPeak {
  gflops: number;
  gbps: number;
  /** 'table' or 'measured'. */
  source: string;
}

/** The datasheet peak of a device, or null when its name is not in GPU_PEAKS. */
export function tablePeak(deviceName: string): GpuPeak | null {
  const row = GPU_PEAKS.find((p) => p.pattern.test(deviceName));
  return row ? { gflops: row.bf16Tflops * 1e3, gbps: row.hbmTbps * 1e3, source: 'table' } : null;
}

/** Measures the peak on the GPU: a long bf16 GEMM (FLOP/s) and a large device-to-device copy (bandwidth). */
export function measurePeak(k: CudaKernels): GpuPeak {
  const n = 8192;
  const a = k.alloc(2 * n * n), b = k.alloc(2 * n * n), c = k.alloc(2 * n * n);
  const gemmSeconds = medianSeconds(() => {
    k.gemm(false, true, n, n, n, 1, a, n, 0, b, n, 0, 0, c, true, n, 0, 1);
    k.synchronize();
  }, 5, 0.5);
  const bytes = 1 << 30;
  const src = k.alloc(bytes), dst = k.alloc(bytes);
  const copySeconds = medianSeconds(() => {
    k.copy(dst, src, bytes);
    k.synchronize();
  }, 5, 0.5);
  for (const p of [a, b, c, src, dst]) k.free(p);
  return { gflops: (2 * n ** 3) / gemmSeconds / 1e9, gbps: (2 * bytes) / copySeconds / 1e9, source: 'measured' };
}

/** The shapes the cases run at; tests pass tiny ones. */
export interface CudaBenchShapes {
  B: number;
  T: number;
  /** Model dim, query heads, KV heads, head dim (NH * HD = C), FFN hidden, vocabulary. */
  C: number;
  NH: number;
  NKV: number;
  HD: number;
  hidden: number;
  V: number;
  /** Extra sequence lengths for attention (longer contexts). */
  longT: number[];
  /** MoE experts and top-k; parameters updated by AdamW. */
  E: number;
  topK: number;
  params: number;
}

export const MINIMIND_SHAPES: CudaBenchShapes = {
  B: 8, T: 512, C: 512, NH: 8, NKV: 2, HD: 64, hidden: 1408, V: 6400, longT: [1024], E: 4, topK: 2, params: 26_000_000,
};

/** Device buffers filled with a fixed pattern (uninitialised memory could hold NaNs and out-of-range ids). */
class DeviceData {
  constructor(private readonly k: CudaKernels) {}

  /** n f32 values in (-scale, scale): a pattern uploaded once, then doubled in place by device copies. */
  f32(n: number, scale = 1): number {
    const p = this.k.alloc(4 * n);
    const first = Math.min(n, 1 << 16);
    this.k.upload(p, Float32Array.from({ length: first }, (_, i) => scale * Math.sin(i * 12.9898 + 0.5)));
    for (let filled = first; filled < n; filled *= 2) {
      this.k.copy(p + 4 * filled, p, 4 * Math.min(filled, n - filled));
    }
    return p;
  }

  bf16(n: number, scale = 1): number {
    const f = this.f32(n, scale);
    const p = this.k.alloc(2 * n);
    this.k.castF32ToBf16(p, f, n);
    this.k.free(f);
    return p;
  }

  i32(values: Int32Array): number {
    const p = this.k.alloc(4 * values.length);
    this.k.upload(p, values);
    return p;
  }
}

const BF16 = 2;
const F32 = 4;

/**
 * The GPU cases for kernel table k against `peak`. Each prepared function launches its kernel `repeat` times and
 * synchronizes, with repeat sized so a run takes about a millisecond at peak (launch overhead amortised).
 * Buffers live until the process ends (as the CPU cases' persistent tensors do).
 */
export function cudaCaseList(k: CudaKernels, peak: GpuPeak, s: CudaBenchShapes = MINIMIND_SHAPES): KernelCase[] {
  const data = new DeviceData(k);
  const peakRates = { gflops: peak.gflops, gbps: peak.gbps };
  const cases: KernelCase[] = [];
  const add = (kernel: string, pass: 'fwd' | 'bwd', shape: string, work: { flops?: number; bytes?: number },
    prepare: () => () => void) => {
    const seconds = work.flops ? work.flops / (peak.gflops * 1e9) : (work.bytes ?? 0) / (peak.gbps * 1e9);
    const repeat = Math.max(1, Math.min(200, Math.ceil(1e-3 / Math.max(seconds, 1e-9))));
    cases.push({
      kernel: `cuda_${kernel}`, pass, shape: `${shape} (${peak.source} peak)`, ...work, peak: peakRates, repeat,
      prepare: () => {
        const call = prepare();
        return () => {
          for (let r = 0; r < repeat; r++) call();
          k.synchronize();
        };
      },
    });
  };
  const N = s.B * s.T;
  const KV = s.NKV * s.HD;

  // GEMM: linear layers y = x @ wᵀ (fwd), dx += dy @ w and dw += dyᵀ @ x (bwd), bf16 in, bf16 y/dx, f32 dw.
  for (const [K, M, name] of [[s.C, s.C, 'wq/wo'], [s.C, KV, 'wk/wv'], [s.C, s.hidden, 'w1/w3'],
    [s.hidden, s.C, 'w2'], [s.C, s.V, 'output']] as [number, number, string][]) {
    const shape = `${name} rows=${N} K=${K} N=${M}`;
    add('gemm', 'fwd', shape, { flops: 2 * N * M * K }, () => {
      const [x, w, y] = [data.bf16(N * K), data.bf16(M * K, 0.05), k.alloc(BF16 * N * M)];
      return () => k.gemm(false, true, N, M, K, 1, x, K, 0, w, K, 0, 0, y, true, M, 0, 1);
    });
    add('gemm', 'bwd', shape, { flops: 4 * N * M * K }, () => {
      const [x, w, dy, dx, dw] = [data.bf16(N * K), data.bf16(M * K, 0.05), data.bf16(N * M, 0.01),
        data.bf16(N * K), data.f32(M * K)];
      return () => {
        k.gemm(false, false, N, K, M, 1, dy, M, 0, w, K, 0, 1, dx, true, K, 0, 1);
        k.gemm(true, false, M, K, N, 1, dy, M, 0, x, K, 0, 1, dw, false, K, 0, 1);
      };
    });
  }

  // Attention, causal: QKᵀ and PV are 2*T*T*HD flops each per head, halved by the mask; the backward's five
  // products (S recomputed, dV, dP, dQ, dK) make it 2.5x the forward.
  for (const T of [s.T, ...s.longT]) {
    const B = Math.max(1, Math.floor(N / T));
    const shape = `B=${B} T=${T} NH=${s.NH} NKV=${s.NKV} HD=${s.HD}`;
    const forwardFlops = 2 * B * s.NH * T * T * s.HD;
    const scale = 1 / Math.sqrt(s.HD);
    const inputs = () => ({
      q: data.bf16(B * T * s.NH * s.HD), kk: data.bf16(B * T * s.NKV * s.HD), v: data.bf16(B * T * s.NKV * s.HD),
      out: k.alloc(BF16 * B * T * s.NH * s.HD), lse: k.alloc(F32 * B * s.NH * T),
    });
    add('attention', 'fwd', shape, { flops: forwardFlops }, () => {
      const { q, kk, v, out, lse } = inputs();
      return () => k.attentionForward(out, lse, q, kk, v, B, T, s.NH, s.NKV, s.HD, scale);
    });
    add('attention', 'bwd', shape, { flops: 2.5 * forwardFlops }, () => {
      const { q, kk, v, out, lse } = inputs();
      k.attentionForward(out, lse, q, kk, v, B, T, s.NH, s.NKV, s.HD, scale);
      const [dout, dq, dk, dv] = [data.bf16(B * T * s.NH * s.HD), k.alloc(BF16 * B * T * s.NH * s.HD),
        k.alloc(BF16 * B * T * KV), k.alloc(BF16 * B * T * KV)];
      for (const [p, n] of [[dq, B * T * s.NH * s.HD], [dk, B * T * KV], [dv, B * T * KV]]) k.zero(p, BF16 * n);
      return () => k.attentionBackward(dq, dk, dv, dout, out, lse, q, kk, v, B, T, s.NH, s.NKV, s.HD, scale);
    });
  }

  // RMSNorm fused with the residual add: x, residual in; h, y out (bf16). Backward: dy, h in, dh read and
  // written, then the weight-gradient pass reads dy and h again.
  const rows = `rows=${N} C=${s.C}`;
  add('rmsnorm', 'fwd', rows, { bytes: 4 * N * s.C * BF16 }, () => {
    const [x, r, w, h, y, rstd] = [data.bf16(N * s.C), data.bf16(N * s.C), data.bf16(s.C), k.alloc(BF16 * N * s.C),
      k.alloc(BF16 * N * s.C), k.alloc(F32 * N)];
    return () => k.rmsnormForward(y, h, rstd, x, r, w, N, s.C, 1e-5);
  });
  add('rmsnorm', 'bwd', rows, { bytes: 6 * N * s.C * BF16 }, () => {
    const [dy, h, w, dh, dw, rstd] = [data.bf16(N * s.C), data.bf16(N * s.C), data.bf16(s.C), data.bf16(N * s.C),
      data.f32(s.C), data.f32(N)];
    return () => k.rmsnormBackward(dh, dw, dy, h, w, rstd, N, s.C);
  });

  // SwiGLU over [N, hidden]: gate, up in, out written; backward reads dout, gate, up and updates dgate, dup.
  const ffn = N * s.hidden;
  add('swiglu', 'fwd', `n=${N}x${s.hidden}`, { bytes: 3 * ffn * BF16 }, () => {
    const [g, u, out] = [data.bf16(ffn), data.bf16(ffn), k.alloc(BF16 * ffn)];
    return () => k.swigluForward(out, g, u, ffn);
  });
  add('swiglu', 'bwd', `n=${N}x${s.hidden}`, { bytes: 7 * ffn * BF16 }, () => {
    const [g, u, dout, dg, du] = [data.bf16(ffn), data.bf16(ffn), data.bf16(ffn), data.bf16(ffn), data.bf16(ffn)];
    return () => k.swigluBackward(dg, du, dout, g, u, ffn);
  });

  // RoPE on q [B, T, NH, HD] (cos/sin tables are small and cached): read and write; backward accumulates (+ read).
  const qSize = N * s.NH * s.HD;
  for (const [pass, backward] of [['fwd', false], ['bwd', true]] as ['fwd' | 'bwd', boolean][]) {
    add('rope', pass, `B=${s.B} T=${s.T} NH=${s.NH} HD=${s.HD}`, { bytes: (backward ? 3 : 2) * qSize * BF16 }, () => {
      const [x, out, cos, sin] = [data.bf16(qSize), data.bf16(qSize), data.f32(s.T * s.HD / 2), data.f32(s.T * s.HD / 2)];
      return () => k.rope(out, x, cos, sin, s.B, s.T, s.NH, s.HD, 0, false, backward);
    });
  }

  // Embedding: N rows gathered (read + write); backward adds each dout row into an f32 table row (read + write).
  const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % s.V);
  add('embedding', 'fwd', `N=${N} C=${s.C} V=${s.V}`, { bytes: 2 * N * s.C * BF16 }, () => {
    const [table, out, idp] = [data.bf16(s.V * s.C), k.alloc(BF16 * N * s.C), data.i32(ids)];
    return () => k.embeddingForward(out, idp, table, N, s.C, s.V);
  });
  add('embedding', 'bwd', `N=${N} C=${s.C} V=${s.V}`, { bytes: N * s.C * (BF16 + 2 * F32) }, () => {
    const [dtable, dout, idp] = [data.f32(s.V * s.C), data.bf16(N * s.C), data.i32(ids)];
    return () => k.embeddingBackward(dtable, idp, dout, N, s.C, s.V);
  });

  // Cross-entropy: logits read, gradient written in place (the row's passes after the first hit the cache).
  add('cross_entropy', 'fwd', `N=${N} V=${s.V}`, { bytes: 2 * N * s.V * BF16 }, () => {
    const [logits, targets, losses] = [data.bf16(N * s.V), data.i32(ids), k.alloc(F32 * N)];
    return () => k.crossEntropy(losses, logits, targets, N, s.V, 1 / N);
  });

  // Per-token log-probabilities (DPO): logits read (lse saved); the backward re-reads them and writes the gradient.
  add('token_logprobs', 'fwd', `N=${N} V=${s.V}`, { bytes: N * s.V * BF16 }, () => {
    const [logits, targets, logp, lse] = [data.bf16(N * s.V), data.i32(ids), k.alloc(F32 * N), k.alloc(F32 * N)];
    return () => k.tokenLogprobs(logp, lse, logits, targets, N, s.V);
  });
  add('token_logprobs', 'bwd', `N=${N} V=${s.V}`, { bytes: 2 * N * s.V * BF16 }, () => {
    const [logits, targets, lse, dlogp, grad] = [data.bf16(N * s.V), data.i32(ids), data.f32(N), data.f32(N),
      k.alloc(BF16 * N * s.V)];
    return () => k.tokenLogprobsBackward(grad, false, logits, lse, targets, dlogp, N, s.V);
  });

  // Decoding: one query per head against a cache of T positions (the cache's k and v are the bytes that count).
  add('attention_decode', 'fwd', `B=${s.B} Tk=${s.T} NH=${s.NH} NKV=${s.NKV} HD=${s.HD}`,
    { bytes: 2 * s.B * s.T * s.NKV * s.HD * BF16 }, () => {
      const [q, kc, vc, out] = [data.bf16(s.B * s.NH * s.HD), data.bf16(s.B * s.T * s.NKV * s.HD),
        data.bf16(s.B * s.T * s.NKV * s.HD), k.alloc(BF16 * s.B * s.NH * s.HD)];
      return () => k.attentionDecode(out, q, kc, vc, s.B, 1, s.T, s.NH, s.NKV, s.HD, 1 / Math.sqrt(s.HD), true);
    });

  // AdamW: f32 master, m, v read and written, f32 grad read, bf16 param written: 30 bytes a parameter.
  add('adamw', 'fwd', `params=${s.params}`, { bytes: 30 * s.params }, () => {
    const [master, grad, m, v, param] = [data.f32(s.params), data.f32(s.params, 0.01), data.f32(s.params, 0.001),
      k.alloc(F32 * s.params), k.alloc(BF16 * s.params)];
    k.fill(v, s.params, 1e-6); // the second moment is never negative
    return () => k.adamw(master, param, grad, m, v, s.params, 1e-4, 0.9, 0.95, 1e-8, 0.1, 0.1, 0.01, 1, 0);
  });
  // Adam with L2 weight decay (--optimizer adam): the same traffic.
  add('adam_l2', 'fwd', `params=${s.params}`, { bytes: 30 * s.params }, () => {
    const [master, grad, m, v, param] = [data.f32(s.params), data.f32(s.params, 0.01), data.f32(s.params, 0.001),
      k.alloc(F32 * s.params), k.alloc(BF16 * s.params)];
    k.fill(v, s.params, 1e-6);
    return () => k.adamL2(master, param, grad, m, v, s.params, 1e-4, 0.9, 0.95, 1e-8, 0.1, 0.1, 0.01, 1, 0);
  });

  // Global gradient norm: one read of every gradient.
  add('sum_squares', 'fwd', `n=${s.params}`, { bytes: F32 * s.params }, () => {
    const [x, out] = [data.f32(s.params), k.alloc(F32 * (1 + SUM_SQUARES_SCRATCH))];
    k.zero(out, F32 * (1 + SUM_SQUARES_SCRATCH));
    return () => k.sumSquares(out, x, s.params);
  });

  // MoE routing (moe.cu): the router over [N, E] gate logits, then rows of C moved into expert order and back.
  const NK = N * s.topK;
  const moeShape = `N=${N} E=${s.E} k=${s.topK} C=${s.C}`;
  const route = () => {
    const r = {
      logits: data.bf16(N * s.E, 2), scores: k.alloc(F32 * N * s.E), weights: k.alloc(F32 * NK), experts: k.alloc(4 * NK),
      offsets: k.alloc(4 * (s.E + 1)), order: k.alloc(4 * NK), positions: k.alloc(4 * NK),
    };
    k.moeRoute(r.logits, N, s.E, s.topK, true, r.scores, r.weights, r.experts, r.offsets, r.order, r.positions);
    return r;
  };
  // logits in, scores out; weights, experts, order, positions written (the sort re-reads experts from cache).
  add('moe_route', 'fwd', moeShape, { bytes: N * s.E * (BF16 + F32) + 4 * NK * 4 }, () => {
    const r = route();
    return () => k.moeRoute(r.logits, N, s.E, s.topK, true, r.scores, r.weights, r.experts, r.offsets, r.order,
      r.positions);
  });
  // dlogits read and written; scores, dscores in; weights, experts, dweights in.
  add('moe_route', 'bwd', moeShape, { bytes: N * s.E * (2 * BF16 + 2 * F32) + 3 * NK * 4 }, () => {
    const r = route();
    const [dlogits, dweights, dscores] = [data.bf16(N * s.E), data.f32(NK), data.f32(N * s.E)];
    return () => k.moeRouteBackward(dlogits, r.scores, r.weights, r.experts, dweights, dscores, N, s.E, s.topK, true);
  });
  add('moe_dispatch', 'fwd', moeShape, { bytes: 2 * NK * s.C * BF16 }, () => {
    const r = route();
    const [x, out] = [data.bf16(N * s.C), k.alloc(BF16 * NK * s.C)];
    return () => k.moeDispatch(out, x, r.order, N, s.topK, s.C);
  });
  add('moe_dispatch', 'bwd', moeShape, { bytes: (NK + 2 * N) * s.C * BF16 }, () => {
    const r = route();
    const [dx, dout] = [data.bf16(N * s.C), data.bf16(NK * s.C)];
    return () => k.moeDispatchBackward(dx, dout, r.positions, N, s.topK, s.C);
  });
  add('moe_combine', 'fwd', moeShape, { bytes: (NK + N) * s.C * BF16 }, () => {
    const r = route();
    const [expertOut, y] = [data.bf16(NK * s.C), k.alloc(BF16 * N * s.C)];
    return () => k.moeCombine(y, expertOut, r.weights, r.positions, N, s.topK, s.C);
  });
  // dy read, expert rows read, dexpert rows read and written (the weights pass re-reads dy and expert rows).
  add('moe_combine', 'bwd', moeShape, { bytes: (N + 3 * NK) * s.C * BF16 }, () => {
    const r = route();
    const [dy, expertOut, dexpert, dweights] = [data.bf16(N * s.C), data.bf16(NK * s.C), data.bf16(NK * s.C),
      data.f32(NK)];
    return () => k.moeCombineBackward(dexpert, dweights, dy, expertOut, r.weights, r.order, r.positions, N, s.topK,
      s.C);
  });
  return cases;
}

/** `bench kernels` cases: the GPU's, when there is one. */
export function cases(): KernelCase[] {
  if (!cudaDevice) return [];
  const info = native.cpu.cudaInfo();
  if (info.deviceCount < 1) return [];
  return cudaCaseList(cudaDevice, tablePeak(info.devices[0].name) ?? measurePeak(cudaDevice));
}
