// SwiGLU at MiniMind's FFN shapes (B*T = 4096 rows, hidden 1408 and 2048): memory-bound.
// Forward reads a, b and writes out (12 bytes a value); the fused backward reads dout, a, b and writes
// da, db into fresh buffers (20 bytes a value).
import { native } from '../../lib/native';
import { swiglu } from '../../lib/ops/swiglu';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const ROWS = 4096;

function casesFor(F: number): KernelCase[] {
  const n = ROWS * F;
  const shape = `BT=${ROWS} F=${F}`;
  // Allocated once, on first use, and shared by the cases of this shape.
  let shared: ReturnType<typeof allocate> | undefined;
  const inputs = () => (shared ??= allocate());
  const allocate = () => ({
    a: Tensor.persistent([ROWS, F]).fill_(0.3),
    b: Tensor.persistent([ROWS, F]).fill_(-0.7),
    dout: Tensor.persistent([ROWS, F]).fill_(0.01),
    da: Tensor.persistent([ROWS, F]),
    db: Tensor.persistent([ROWS, F]),
  });
  return [
    {
      kernel: 'swiglu',
      pass: 'fwd',
      shape,
      bytes: 3 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () => void swiglu(t.a, t.b);
      },
    },
    {
      kernel: 'swiglu',
      pass: 'bwd',
      shape,
      bytes: 5 * 4 * n,
      prepare: () => {
        const t = inputs();
        return () => native.cpu.swigluBackward(t.da.ptr, false, t.db.ptr, false, t.dout.ptr, t.a.ptr, t.b.ptr, n);
      },
    },
  ];
}

export function cases(): KernelCase[] {
  return [...casesFor(1408), ...casesFor(2048)];
}
