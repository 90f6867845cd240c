// RMSNorm kernels at MiniMind's shapes (B*T = 4096 rows, dim 512 and 768): memory-bound.
// Bytes count what must move: forward reads x (and residual) and writes y (and sum); backward reads x, dy
// (and dsum) and writes the input gradient(s) into fresh buffers. The [C] weight and [rows] rstd are noise.
import { native } from '../../lib/native';
import { addRmsnorm, rmsnorm } from '../../lib/ops/norm';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const ROWS = 4096;

function cases1(C: number): KernelCase[] {
  const n = ROWS * C;
  const shape = `BT=${ROWS} C=${C}`;
  // Allocated once, on first use, and shared by the cases of this shape.
  let shared: ReturnType<typeof allocate> | undefined;
  const inputs = () => (shared ??= allocate());
  const allocate = () => ({
    x: Tensor.persistent([ROWS, C]).fill_(0.5),
    r: Tensor.persistent([ROWS, C]).fill_(-0.25),
    dy: Tensor.persistent([ROWS, C]).fill_(0.1),
    w: Tensor.persistent([C]).fill_(1),
    dw: Tensor.persistent([C]),
    rstd: Tensor.persistent([ROWS]).fill_(1),
    out: Tensor.persistent([ROWS, C]),
    out2: Tensor.persistent([ROWS, C]),
  });
  return [
    {
      kernel: 'rmsnorm',
      pass: 'fwd',
      shape,
      bytes: 2 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () => void rmsnorm(t.x, t.w, 1e-5);
      },
    },
    {
      kernel: 'rmsnorm',
      pass: 'bwd',
      shape,
      bytes: 3 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () =>
          native.cpu.rmsnormBackward(t.out.ptr, false, 0, false, t.dw.ptr, t.dy.ptr, 0, t.x.ptr, t.w.ptr, t.rstd.ptr, ROWS, C);
      },
    },
    {
      kernel: 'add_rmsnorm',
      pass: 'fwd',
      shape,
      bytes: 4 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () => void addRmsnorm(t.r, t.x, t.w, 1e-5);
      },
    },
    {
      kernel: 'add_rmsnorm',
      pass: 'bwd',
      shape,
      bytes: 5 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () =>
          native.cpu.rmsnormBackward(t.out.ptr, false, t.out2.ptr, false, t.dw.ptr, t.dy.ptr, t.r.ptr, t.x.ptr, t.w.ptr,
            t.rstd.ptr, ROWS, C);
      },
    },
  ];
}

export function cases(): KernelCase[] {
  return [...cases1(512), ...cases1(768)];
}
