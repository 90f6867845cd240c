// Embedding at MiniMind's shapes (B*T = 4096 ids, vocab 6400, dim 512 and 768): memory-bound.
// Forward reads the ids and one weight row per id and writes the output rows. Backward reads dout and
// reads+writes each distinct dweight row once (ids are uniform here, so about 47% of the 6400 rows).
import { native } from '../../lib/native';
import { embedding } from '../../lib/ops/embedding';
import { Tensor } from '../../lib/tensor/tensor';
import { KernelCase } from '../harness';

const N = 4096;
const V = 6400;

function casesFor(C: number): KernelCase[] {
  // A fixed pseudo-random id sequence (an LCG), so every run moves the same bytes.
  const ids = new Int32Array(N);
  for (let i = 0, s = 12345; i < N; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    ids[i] = (s >>> 8) % V;
  }
  const distinct = new Set(ids).size;
  const shape = `BT=${N} V=${V} C=${C}`;
  const inputs = () => {
    const tids = Tensor.persistent([N], 'i32');
    tids.upload(ids);
    return { ids: tids, w: Tensor.persistent([V, C]).fill_(0.02), dout: Tensor.persistent([N, C]).fill_(1e-3) };
  };
  return [
    {
      kernel: 'embedding',
      pass: 'fwd',
      shape,
      bytes: 4 * N + 2 * 4 * N * C,
      prepare: () => {
        const t = inputs();
        return () => void embedding(t.ids, t.w);
      },
    },
    {
      kernel: 'embedding',
      pass: 'bwd',
      shape,
      bytes: 4 * N + 4 * N * C + 2 * 4 * distinct * C,
      prepare: () => {
        const t = inputs();
        return () => native.cpu.embeddingBackward(t.w.ptr, t.ids.ptr, t.dout.ptr, N, V, C);
      },
    },
  ];
}

export function cases(): KernelCase[] {
  return [...casesFor(512), ...casesFor(768)];
}
