// `bench allreduce` runs end to end (2 rank processes, shm): sizes, bus bandwidth and the DDP step costs are
// reported and consistent. Small sizes and a small stand-in backward keep it quick; timings are not checked.
import { benchAllReduce } from '../bench/allreduce';

test('bench allreduce: 2 shm ranks report bandwidth, the blocking DDP cost and what overlap leaves exposed', async () => {
  const r = await benchAllReduce({ world: 2, transport: 'shm', sizesMB: [1], iters: 2, tokens: 64 });
  expect([r.world, r.transport]).toEqual([2, 'shm']);
  expect(r.sizes.map((s) => s.bytes)).toEqual([1 << 20]);
  expect(r.sizes[0].busbw_gbps).toBeCloseTo(r.sizes[0].algbw_gbps, 9); // 2 (W-1)/W = 1 for 2 ranks
  expect(r.ddp.params).toBe(26878464); // minimind-v1-small, the tied output counted once
  expect(r.ddp.tensors).toBe(74);
  expect(r.ddp.step_overhead_s).toBeGreaterThan(0);
  expect(r.ddp.exposed_s).toBeGreaterThanOrEqual(0);
}, 120_000);
