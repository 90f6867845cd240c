// RoPE on MiniMind's query activations (B=8, T=512, NH=16, HD=32): memory-bound, one read and one write of x
// plus the table rows.
import { rope, ropeTable } from '../../lib/ops/rope';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

export function cases(): KernelCase[] {
  const B = 8, T = 512, H = 16, HD = 32;
  const n = B * T * H * HD;
  const bytes = 2 * 4 * n + 2 * 4 * T * (HD / 2);
  return (['interleaved', 'half'] as const).map((style) => ({
    kernel: `rope_${style}`,
    pass: 'fwd' as const,
    shape: `B=${B} T=${T} H=${H} HD=${HD}`,
    bytes,
    prepare: () => {
      const table = ropeTable(T, HD, 1e4);
      const x = Tensor.persistent([B, T, H, HD]).fill_(0.5);
      return () => {
        rope(x, table, style);
      };
    },
  }));
}
