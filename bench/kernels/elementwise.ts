// Elementwise kernels at MiniMind's activation size (B*T = 4096 rows of dim 512): memory-bound.
import { add } from '../../lib/ops/elementwise';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

export function cases(): KernelCase[] {
  const n = 4096 * 512;
  return [
    {
      kernel: 'add',
      pass: 'fwd',
      shape: `BT=4096 C=512`,
      bytes: 3 * 4 * n,
      prepare: () => {
        const a = Tensor.persistent([n]).fill_(1);
        const b = Tensor.persistent([n]).fill_(2);
        return () => {
          add(a, b);
        };
      },
    },
  ];
}
