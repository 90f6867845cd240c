// GEMM at MiniMind's linear-layer shapes, B*T = 4096 rows (compute-bound; flops = 2*M*N*K per product):
//   fwd  y = x @ wᵀ                        x [4096, K], w [N, K]
//   bwd  dx += dy @ w  and  dw += dyᵀ @ x    (both products, as the backward of linear runs them)
// for dim 512 (wq/wo 512->512, wk/wv 512->256, w1/w3 512->1408, w2 1408->512, output 512->6400) and dim 768.
// When an OpenBLAS library is installed, the same products through its cblas_sgemm (dlopen()ed by the
// addon, never linked) run as `gemm_openblas` cases, so the output shows our speed next to OpenBLAS's.
import { GemmKernels } from '../../lib/ops/gemm';
import { kernels } from '../../lib/ops/kernels';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const ROWS = 4096;
// [K, N, which layers]
const SHAPES: [number, number, string][] = [
  [512, 512, 'dim512 wq/wo'],
  [512, 256, 'dim512 wk/wv'],
  [512, 1408, 'dim512 w1/w3'],
  [1408, 512, 'dim512 w2'],
  [512, 6400, 'dim512 output'],
  [768, 768, 'dim768 wq/wo'],
  [768, 384, 'dim768 wk/wv'],
  [768, 2048, 'dim768 w1/w3'],
  [2048, 768, 'dim768 w2'],
  [768, 6400, 'dim768 output'],
];

type Gemm = GemmKernels['gemm'];
interface OpenBlasKernels {
  openblasGemm(...args: Parameters<Gemm>): boolean;
}
const cpu = kernels<GemmKernels & OpenBlasKernels>('cpu');

/** One set of buffers, sized for the largest shape and shared by every case (contents do not matter). */
let scratch: { x: Tensor; dx: Tensor; w: Tensor; dw: Tensor; y: Tensor } | null = null;
function buffers() {
  if (!scratch) {
    const maxK = Math.max(...SHAPES.map(([K]) => K));
    const maxN = Math.max(...SHAPES.map(([, N]) => N));
    const maxW = Math.max(...SHAPES.map(([K, N]) => K * N));
    const make = (n: number) => Tensor.persistent([n]).fill_(0.01);
    scratch = { x: make(ROWS * maxK), dx: make(ROWS * maxK), w: make(maxW), dw: make(maxW), y: make(ROWS * maxN) };
  }
  return scratch;
}

function shapeCases(K: number, N: number, layers: string, kernel: string, gemm: Gemm): KernelCase[] {
  const shape = `BT=${ROWS} ${K}->${N} (${layers})`;
  const flops = 2 * ROWS * N * K;
  return [
    {
      kernel,
      pass: 'fwd',
      shape,
      flops,
      prepare: () => {
        const { x, w, y } = buffers();
        return () => gemm(false, true, ROWS, N, K, 1, x.ptr, K, 0, w.ptr, K, 0, 0, y.ptr, N, 0, 1);
      },
    },
    {
      kernel,
      pass: 'bwd',
      shape,
      flops: 2 * flops,
      prepare: () => {
        const { x, dx, w, dw, y: dy } = buffers();
        return () => {
          gemm(false, false, ROWS, K, N, 1, dy.ptr, N, 0, w.ptr, K, 0, 1, dx.ptr, K, 0, 1);  // dx += dy @ w
          gemm(true, false, N, K, ROWS, 1, dy.ptr, N, 0, x.ptr, K, 0, 1, dw.ptr, K, 0, 1);  // dw += dyᵀ @ x
        };
      },
    },
  ];
}

export function cases(): KernelCase[] {
  // A 1 x 1 x 1 product tells whether the library is there.
  const probe = Tensor.persistent([1]);
  const haveOpenBlas = cpu.openblasGemm(false, false, 1, 1, 1, 1, probe.ptr, 1, 0, probe.ptr, 1, 0, 0, probe.ptr, 1, 0, 1);
  probe.dispose();
  const ours: Gemm = (...args) => cpu.gemm(...args);
  const openblas: Gemm = (...args) => void cpu.openblasGemm(...args);
  // Each shape's OpenBLAS cases right after ours, so both see the same machine load.
  return SHAPES.flatMap(([K, N, layers]) => [
    ...shapeCases(K, N, layers, 'gemm', ours),
    ...(haveOpenBlas ? shapeCases(K, N, layers, 'gemm_openblas', openblas) : []),
  ]);
}
