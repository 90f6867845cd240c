// Matrix products with autograd, on the native GEMM (native/cpu/gemm.cc; `gemm` in every device's table).
//   matmul(a, b)  [M, K] @ [K, N] -> [M, N], or batched [Bt, M, K] @ [Bt, K, N] -> [Bt, M, N] (attention);
//                 transA / transB read a stored [.., K, M] / [.., N, K] as its transpose, without a copy.
//   linear(x, w)  x [..., K] (B, T, C: any leading dims) @ wᵀ with w [N, K] (nn.Linear's layout, no bias).
// Backward passes are GEMMs too, accumulating straight into the inputs' gradients (beta = 1): no temporaries.
// On cuda: operands are read as bf16 (parameters through their working copies), fp32 accumulation; outputs are
// bf16, and each gradient is accumulated in its own dtype (bf16 activations, f32 parameters).
// Inference on the CPU may keep linear weights in bf16 or f16 (lib/infer/weights.ts): linear() then reads them
// widened to f32 in registers (native/cpu/gemv.cc), with f32 activations and sums, and records no gradient.
import { needsGrad, record } from '../autograd/tape';
import { asBf16, assertFloat } from '../cuda/mixed';
import { cudaKernels } from '../cuda/kernels';
import { Tensor } from '../tensor/tensor';
import { gradBuffer } from './grad-target';
import { kernels, sameDevice } from './kernels';

/** The native kernels this file calls (see native/addon/gemm.cc). Matrices are addresses + row strides. */
export interface GemmKernels {
  /** for b < batch: C_b = alpha * op(A_b) @ op(B_b) + beta * C_b, op(X) = Xᵀ when transX, X_b = X + b*strideX. */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: number, lda: number, strideA: number, B: number, ldb: number, strideB: number,
    beta: number, C: number, ldc: number, strideC: number, batch: number): void;
  /** out[i] = weight[ids[i]] widened to f32 (weight [V, C] half precision); throws a RangeError for a bad id. */
  embeddingHalfWeights(type: number, out: number, ids: number, n: number, weight: number, V: number, C: number): void;
  /** C[M, N] = A[M, K] @ B[N, K]ᵀ with half-precision B (type 1 bf16, 2 f16), f32 A and C. */
  gemmHalfWeights(type: number, M: number, N: number, K: number, A: number, lda: number, B: number, ldb: number,
    C: number, ldc: number): void;
}

/** The code of a half-precision weight dtype in the native kernels (gemm.h WeightType). */
export const HALF_WEIGHT_TYPE: Partial<Record<string, number>> = { bf16: 1, f16: 2 };

const k = (t: Tensor) => kernels<GemmKernels>(t.device);

/** One operand as the kernel sees it: a (possibly transposed) stack of row-major matrices. */
interface Operand {
  t: Tensor;
  trans: boolean;
  /** Stored rows and columns of each matrix. */
  rows: number;
  cols: number;
}

const ld = (o: Operand) => o.cols;
const stride = (o: Operand, batch: number) => (batch > 1 ? o.rows * o.cols : 0);

/**
 * C (+)= op(A) @ op(B) for `batch` matrices, where op(A) is M x K and op(B) is K x N. `accumulate` adds
 * to C (beta = 1), otherwise C is overwritten.
 */
function gemmInto(c: Tensor, a: Operand, b: Operand, M: number, N: number, K: number, batch: number,
  accumulate: boolean): void {
  if (c.device === 'cuda') {
    cudaKernels().gemm(a.trans, b.trans, M, N, K, 1, asBf16(a.t).ptr, ld(a), stride(a, batch), asBf16(b.t).ptr, ld(b),
      stride(b, batch), accumulate ? 1 : 0, c.ptr, c.dtype === 'bf16', N, batch > 1 ? M * N : 0, batch);
    return;
  }
  k(c).gemm(a.trans, b.trans, M, N, K, 1, a.t.ptr, ld(a), stride(a, batch), b.t.ptr, ld(b), stride(b, batch),
    accumulate ? 1 : 0, c.ptr, N, batch > 1 ? M * N : 0, batch);
}

/** f32 on the CPU; f32 or bf16 on cuda. Returns the dtype of the product. */
function checkF32(op: string, ...ts: Tensor[]): 'f32' | 'bf16' {
  const device = sameDevice(op, ...ts);
  for (const t of ts) assertFloat(op, t);
  return device === 'cuda' ? 'bf16' : 'f32';
}

/**
 * a @ b for 2D [M, K] @ [K, N] or batched 3D [Bt, M, K] @ [Bt, K, N]; `transA` / `transB` mean a / b are
 * stored transposed ([.., K, M] / [.., N, K]).
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const dtype = checkF32('matmul', a, b);
  if (a.ndim !== b.ndim || (a.ndim !== 2 && a.ndim !== 3)) {
    throw new Error(`matmul: expected two 2D or two 3D tensors, got ${a.describe()} and ${b.describe()}`);
  }
  const batched = a.ndim === 3;
  const batch = batched ? a.shape[0] : 1;
  if (batched && b.shape[0] !== batch) {
    throw new Error(`matmul: batch sizes differ: ${a.describe()} and ${b.describe()}`);
  }
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [M, K] = transA ? [aCols, aRows] : [aRows, aCols];
  const [Kb, N] = transB ? [bCols, bRows] : [bRows, bCols];
  if (K !== Kb) {
    throw new Error(`matmul: inner sizes differ: ${a.describe()}${transA ? 'ᵀ' : ''} @ ${b.describe()}${transB ? 'ᵀ' : ''}`);
  }
  const A: Operand = { t: a, trans: transA, rows: aRows, cols: aCols };
  const B: Operand = { t: b, trans: transB, rows: bRows, cols: bCols };
  const out = Tensor.empty(batched ? [batch, M, N] : [M, N], dtype, a.device, false);
  gemmInto(out, A, B, M, N, K, batch, false);

  if (needsGrad(a, b)) {
    record(out, () => {
      const dC: Operand = { t: out.grad!, trans: false, rows: M, cols: N };
      // d op(A) = dC @ op(B)ᵀ (M x K); stored transposed, dA = op(B) @ dCᵀ (K x M).
      if (a.requiresGrad) {
        const dA = gradBuffer(a);
        if (!transA) gemmInto(dA, dC, { ...B, trans: !transB }, M, K, N, batch, true);
        else gemmInto(dA, B, { ...dC, trans: true }, K, M, N, batch, true);
      }
      // d op(B) = op(A)ᵀ @ dC (K x N); stored transposed, dB = dCᵀ @ op(A) (N x K).
      if (b.requiresGrad) {
        const dB = gradBuffer(b);
        if (!transB) gemmInto(dB, { ...A, trans: !transA }, dC, K, N, M, batch, true);
        else gemmInto(dB, { ...dC, trans: true }, A, N, K, M, batch, true);
      }
    });
  }
  return out;
}

/** x @ wᵀ: x [..., K], w [N, K] (PyTorch nn.Linear layout, no bias) -> [..., N]. */
export function linear(x: Tensor, w: Tensor): Tensor {
  if (w.device === 'cpu' && HALF_WEIGHT_TYPE[w.dtype] !== undefined) return linearHalfWeight(x, w);
  const dtype = checkF32('linear', x, w);
  if (w.ndim !== 2 || x.ndim < 1) {
    throw new Error(`linear: expected x [..., K] and w [N, K], got ${x.describe()} and ${w.describe()}`);
  }
  const [N, K] = w.shape;
  if (x.shape[x.ndim - 1] !== K) {
    throw new Error(`linear: x ${x.describe()} has last dim ${x.shape[x.ndim - 1]}, weight ${w.describe()} wants ${K}`);
  }
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const X: Operand = { t: x, trans: false, rows, cols: K };
  const W: Operand = { t: w, trans: true, rows: N, cols: K };
  const out = Tensor.empty([...x.shape.slice(0, -1), N], dtype, x.device, false);
  gemmInto(out, X, W, rows, N, K, 1, false);

  if (needsGrad(x, w)) {
    record(out, () => {
      const dY: Operand = { t: out.grad!, trans: false, rows, cols: N };
      if (x.requiresGrad) gemmInto(gradBuffer(x), dY, { ...W, trans: false }, rows, K, N, 1, true);  // dx += dy @ w
      if (w.requiresGrad) gemmInto(gradBuffer(w), { ...dY, trans: true }, X, N, K, rows, 1, true);  // dw += dyᵀ @ x
    });
  }
  return out;
}

/** linear() with a bf16 or f16 weight [N, K] on the CPU (inference: no gradient flows). */
function linearHalfWeight(x: Tensor, w: Tensor): Tensor {
  const where = 'linear (lib/ops/gemm.ts)';
  if (x.device !== 'cpu' || x.dtype !== 'f32') throw new Error(`${where}: a ${w.dtype} weight needs f32 input on the cpu, got ${x.describe()}`);
  if (needsGrad(x, w)) throw new Error(`${where}: ${w.describe()} is an inference weight; no gradient can flow through it`);
  const [N, K] = w.shape;
  if (w.ndim !== 2 || x.shape[x.ndim - 1] !== K) {
    throw new Error(`${where}: x ${x.describe()} does not match weight ${w.describe()} ([N, K])`);
  }
  const rows = x.size / K;
  const out = Tensor.empty([...x.shape.slice(0, -1), N], 'f32', 'cpu', false);
  k(x).gemmHalfWeights(HALF_WEIGHT_TYPE[w.dtype]!, rows, N, K, x.ptr, K, w.ptr, K, out.ptr, N);
  return out;
}

/** The embedding lookup of a bf16 or f16 weight [V, C] on the CPU (inference): f32 rows [...ids.shape, C]. */
export function embeddingHalfWeight(ids: Tensor, weight: Tensor): Tensor {
  if (needsGrad(weight)) throw new Error(`embedding: ${weight.describe()} is an inference weight; it takes no gradient`);
  const [V, C] = weight.shape;
  const out = Tensor.empty([...ids.shape, C], 'f32', 'cpu', false);
  k(weight).embeddingHalfWeights(HALF_WEIGHT_TYPE[weight.dtype]!, out.ptr, ids.ptr, ids.size, weight.ptr, V, C);
  return out;
}
