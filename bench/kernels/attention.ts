// Causal GQA attention at MiniMind's shapes: B=8, T=512, NH=16, NKV=8, HD=32 (dim 512) and HD=48 (dim 768).
// FLOPs counted as FlashAttention does: forward 4*B*NH*T*T*HD/2 (two T x T x HD products, half of them under
// the causal mask), backward 2.5x forward (five products). The backward case times the backward kernel alone.
import { attention } from '../../lib/ops/attention';
import { kernels } from '../../lib/ops/kernels';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

interface Shape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HD: number;
}

function inputs({ B, T, NH, NKV, HD }: Shape) {
  const q = Tensor.persistent([B, T, NH, HD]).fill_(0.1);
  const k = Tensor.persistent([B, T, NKV, HD]).fill_(0.2);
  const v = Tensor.persistent([B, T, NKV, HD]).fill_(0.3);
  return { q, k, v };
}

function shapeCases(s: Shape): KernelCase[] {
  const { B, T, NH, NKV, HD } = s;
  const fwdFlops = (4 * B * NH * T * T * HD) / 2;
  const shape = `B=${B} T=${T} NH=${NH} NKV=${NKV} HD=${HD} causal (FA flops)`;
  return [
    {
      kernel: 'attention',
      pass: 'fwd',
      shape,
      flops: fwdFlops,
      prepare: () => {
        const { q, k, v } = inputs(s);
        return () => {
          attention(q, k, v);
        };
      },
    },
    {
      kernel: 'attention',
      pass: 'bwd',
      shape,
      flops: 2.5 * fwdFlops,
      prepare: () => {
        const { q, k, v } = inputs(s);
        const out = Tensor.persistent([B, T, NH, HD]);
        const lse = Tensor.persistent([B, NH, T]);
        const dout = Tensor.persistent([B, T, NH, HD]).fill_(0.01);
        const dq = Tensor.persistent(q.shape), dk = Tensor.persistent(k.shape), dv = Tensor.persistent(v.shape);
        const kern = kernels<Record<string, (...args: unknown[]) => void>>('cpu');
        kern.attentionForward(out.ptr, lse.ptr, q.ptr, k.ptr, v.ptr, B, T, T, NH, NKV, HD, true, 0);
        return () => {
          kern.attentionBackward(dq.ptr, dk.ptr, dv.ptr, dout.ptr, q.ptr, k.ptr, v.ptr, out.ptr, lse.ptr,
            B, T, T, NH, NKV, HD, true, 0);
        };
      },
    },
  ];
}

export function cases(): KernelCase[] {
  return [
    ...shapeCases({ B: 8, T: 512, NH: 16, NKV: 8, HD: 32 }),
    ...shapeCases({ B: 8, T: 512, NH: 16, NKV: 8, HD: 48 }),
  ];
}
