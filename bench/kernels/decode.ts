// Decoding kernels (batch 1, one new token), memory-bound, so reported as bytes moved -> % of bandwidth:
//   gemv               y [1, N] = x [1, K] @ wᵀ with w [N, K] in f32, bf16 or f16 (native/cpu/gemv.cc);
//                      bytes = the weights + x + y. Each call reads a different copy of w from a pool larger
//                      than the last-level cache, as decoding does (every weight is read once per token).
//   gemv_token         every linear layer of one decoded token of minimind-v1-small (57 products, ~104 MB of
//                      f32 weights): the weight stream that bounds decoding speed.
//   attention_decode   one query per head against a 512-position KV cache (native/cpu/attention_decode.cc);
//                      bytes = q + the cache's k and v + out.
import { GemmKernels, HALF_WEIGHT_TYPE } from '../../lib/ops/gemm';
import { kernels } from '../../lib/ops/kernels';
import { DTYPE_BYTES } from '../../lib/tensor/dtype';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const POOL_BYTES = 128 << 20; // more than the L3 cache (36 MiB here), and than one token's f32 weights
const DTYPES = ['f32', 'bf16', 'f16'] as const;
type Dtype = (typeof DTYPES)[number];

const cpu = kernels<GemmKernels & { attentionDecode(...args: (number | boolean)[]): void }>('cpu');

/** A pool of weight memory (the values do not matter) and input/output rows, shared by every case. */
let pool: { w: Tensor; x: Tensor; y: Tensor } | null = null;
function buffers() {
  // Filled, not just allocated: untouched zero pages all map to one physical page, which would stay in cache.
  pool ??= { w: Tensor.persistent([POOL_BYTES / 4]).fill_(1e-3), x: Tensor.persistent([8192]), y: Tensor.persistent([8192]) };
  return pool;
}

/** y = x @ wᵀ for a [N, K] weight at `address`, in `dtype`. */
function gemv(dtype: Dtype, N: number, K: number, address: number): void {
  const { x, y } = buffers();
  if (dtype === 'f32') cpu.gemm(false, true, 1, N, K, 1, x.ptr, K, 0, address, K, 0, 0, y.ptr, N, 0, 1);
  else cpu.gemmHalfWeights(HALF_WEIGHT_TYPE[dtype]!, 1, N, K, x.ptr, K, address, K, y.ptr, N);
}

function gemvCase(dtype: Dtype, K: number, N: number, layers: string): KernelCase {
  const weightBytes = N * K * DTYPE_BYTES[dtype];
  return {
    kernel: 'gemv',
    pass: 'fwd',
    shape: `1 x ${K}->${N} ${dtype} (${layers})`,
    bytes: weightBytes + 4 * (K + N),
    prepare: () => {
      const { w } = buffers();
      const copies = Math.floor(POOL_BYTES / weightBytes);
      let next = 0;
      return () => gemv(dtype, N, K, w.ptr + (next++ % copies) * weightBytes);
    },
  };
}

/** [N, K] of every linear product of one token of minimind-v1-small: 8 layers x 7, then the output. */
function tokenShapes(): [number, number][] {
  const layer: [number, number][] = [[512, 512], [256, 512], [256, 512], [512, 512], [1408, 512], [1408, 512], [512, 1408]];
  return [...Array.from({ length: 8 }, () => layer).flat(), [6400, 512]];
}

function tokenCase(dtype: Dtype): KernelCase {
  const shapes = tokenShapes();
  const weightBytes = shapes.reduce((s, [N, K]) => s + N * K * DTYPE_BYTES[dtype], 0);
  if (weightBytes > POOL_BYTES) throw new Error(`bench/kernels/decode.ts: ${weightBytes} bytes of weights exceed the pool`);
  return {
    kernel: 'gemv_token',
    pass: 'fwd',
    shape: `minimind-v1-small, 57 products, ${(weightBytes / 1e6).toFixed(0)} MB ${dtype}`,
    bytes: weightBytes,
    prepare: () => {
      const { w } = buffers();
      return () => {
        let at = 0;
        for (const [N, K] of shapes) {
          gemv(dtype, N, K, w.ptr + at);
          at += N * K * DTYPE_BYTES[dtype];
        }
      };
    },
  };
}

function attentionCase(HD: number): KernelCase {
  const [Tk, NH, NKV] = [512, 16, 8];
  return {
    kernel: 'attention_decode',
    pass: 'fwd',
    shape: `T=1 Tk=${Tk} NH=${NH} NKV=${NKV} HD=${HD}`,
    bytes: 4 * (2 * NH * HD + 2 * Tk * NKV * HD),
    prepare: () => {
      const q = Tensor.persistent([1, 1, NH, HD]).fill_(0.1);
      const k = Tensor.persistent([1, Tk, NKV, HD]).fill_(0.2);
      const v = Tensor.persistent([1, Tk, NKV, HD]).fill_(0.3);
      const out = Tensor.persistent([1, 1, NH, HD]);
      return () => cpu.attentionDecode(out.ptr, q.ptr, k.ptr, v.ptr, 1, 1, Tk, NH, NKV, HD, true, 0);
    },
  };
}

export function cases(): KernelCase[] {
  const shapes: [number, number, string][] = [[512, 512, 'dim512 wq/wo'], [512, 1408, 'dim512 w1/w3'],
    [1408, 512, 'dim512 w2'], [512, 6400, 'dim512 output']];
  return [
    ...DTYPES.flatMap((dtype) => shapes.map(([K, N, layers]) => gemvCase(dtype, K, N, layers))),
    ...DTYPES.map(tokenCase),
    attentionCase(32),
    attentionCase(48),
  ];
}
