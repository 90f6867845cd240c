// All-reduce throughput of the CPU distributed backend, and the time data parallelism adds to a training step.
// benchAllReduce() starts `world` rank processes (this file, as a worker) on 127.0.0.1 and reports, per size:
//   algbw = bytes / time, busbw = algbw * 2 (world-1) / world (the data each rank must move in any all-reduce,
//   NCCL's convention, so numbers compare across world sizes), medians over `iters` timed calls;
// and for DDP, over gradients shaped like minimind-v1-small's parameters (26.9M f32 in 74 tensors):
//   step_overhead_s  one blocking allReduceMean of them all, plus the allReduceNumbers of the logged metrics
//                    (what a step would pay without overlap);
//   exposed_s        what the trainer's overlap leaves: each layer's gradients are started in the background,
//                    as the backward pass reaches that layer, while a stand-in for that layer's backward
//                    computes (a GEMM of a layer's backward size); the time beyond the compute alone.
import { spawn } from 'node:child_process';
import { initDistributed } from '../lib/dist';
import { freePort } from '../lib/dist/launch';
import { native } from '../lib/native';
import { Tensor } from '../lib/tensor/tensor';
import { moduleProcessArgs } from '../lib/util/worker';

export interface AllReduceBenchOptions {
  world?: number;
  transport?: 'shm' | 'tcp';
  sizesMB?: number[];
  iters?: number;
  /** shm transport: bytes per rank slot (lib/dist DistOptions.shmChunkBytes). */
  shmChunkBytes?: number;
  /** Tokens per step of the stand-in backward pass (batch 8 x 512 by default). */
  tokens?: number;
}

export interface AllReduceSizeResult {
  bytes: number;
  median_s: number;
  algbw_gbps: number;
  busbw_gbps: number;
  /** A plain copy of the same bytes in one process, for scale: an all-reduce moves several times that. */
  memcpy_gbps: number;
}

export interface AllReduceBenchResult {
  world: number;
  transport: string;
  threads_per_rank: number;
  sizes: AllReduceSizeResult[];
  ddp: { params: number; tensors: number; grad_bytes: number; step_overhead_s: number; exposed_s: number; busbw_gbps: number };
}

/** minimind-v1-small's parameter shapes (dim 512, 8 layers, 16/8 heads, ffn 1408, vocab 6400, tied output). */
const LAYERS = 8;
const LAYER_SHAPES = [[512, 512], [256, 512], [256, 512], [512, 512], [1408, 512], [512, 1408], [1408, 512], [512], [512]];

function minimindSmallShapes(): number[][] {
  return [[6400, 512], ...Array.from({ length: LAYERS }, () => LAYER_SHAPES).flat(), [512]];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Times `fn` once per iteration after a barrier, so every rank starts together; the slowest rank's time counts. */
function timeCollective(dist: NonNullable<Awaited<ReturnType<typeof initDistributed>>>, iters: number, fn: () => void): number {
  fn(); // warm-up: page faults, buffer growth
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    dist.barrier();
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const slowest = times.map((t) => dist.allReduceNumbers([t])[0]); // mean over ranks of each call's time
  return median(slowest);
}

async function worker(): Promise<void> {
  const o = JSON.parse(process.env.MINIMIND_BENCH_ALLREDUCE!) as Required<AllReduceBenchOptions>;
  const dist = await initDistributed({ shmChunkBytes: o.shmChunkBytes });
  if (!dist) throw new Error('bench allreduce worker: WORLD_SIZE is not set');
  const W = dist.worldSize;
  const busFactor = (2 * (W - 1)) / W;
  const sizes: AllReduceSizeResult[] = [];
  for (const mb of o.sizesMB) {
    const bytes = Math.round(mb * 2 ** 20);
    const t = Tensor.persistent([bytes / 4], 'f32', 'cpu').fill_(dist.rank + 1);
    const s = timeCollective(dist, o.iters, () => dist.allReduceMean([t]));
    const copy = Tensor.persistent([bytes / 4], 'f32', 'cpu');
    const c = timeCollective(dist, o.iters, () => native.cpu.copy(copy.ptr, t.ptr, bytes));
    sizes.push({ bytes, median_s: s, algbw_gbps: bytes / s / 1e9, busbw_gbps: (busFactor * bytes) / s / 1e9,
      memcpy_gbps: bytes / c / 1e9 });
    t.dispose();
    copy.dispose();
  }
  const grads = minimindSmallShapes().map((shape) => Tensor.persistent(shape, 'f32', 'cpu').fill_(0.5));
  const params = grads.reduce((n, g) => n + g.size, 0);
  const stepOverhead = timeCollective(dist, Math.max(3, Math.floor(o.iters / 2)), () => {
    dist.allReduceMean(grads);
    dist.allReduceNumbers([1.25, 0]);
  });
  // The overlapped step: layer by layer (last first), "back-propagate" the layer, then start its gradients. A
  // layer's backward is ~4 x 3.2M params x tokens FLOPs (52 GFLOP at 4096 tokens): here 6 products of
  // 2 x tokens x 512 x 1664.
  const perLayer = LAYER_SHAPES.length;
  const layerGrads = (l: number) => grads.slice(1 + l * perLayer, 1 + (l + 1) * perLayer);
  const [M, K, N] = [o.tokens, 512, 1664];
  const a = Tensor.persistent([M, K], 'f32', 'cpu').fill_(0.01);
  const b = Tensor.persistent([N, K], 'f32', 'cpu').fill_(0.01);
  const c = Tensor.persistent([M, N], 'f32', 'cpu');
  const layerBackward = () => {
    for (let r = 0; r < 6; r++) native.cpu.gemm(false, true, M, N, K, 1, a.ptr, K, 0, b.ptr, K, 0, 0, c.ptr, N, 0, 1);
  };
  const computeOnly = timeCollective(dist, 3, () => {
    for (let l = LAYERS - 1; l >= 0; l--) layerBackward();
  });
  const overlapped = timeCollective(dist, 3, () => {
    for (let l = LAYERS - 1; l >= 0; l--) {
      layerBackward();
      dist.allReduceMeanStart(layerGrads(l));
    }
    dist.allReduceMeanStart([grads[0], grads[grads.length - 1]]);
    dist.waitAll();
    dist.allReduceNumbers([1.25, 0]);
  });
  [a, b, c].forEach((t) => t.dispose());
  if (dist.rank === 0) {
    const result: AllReduceBenchResult = {
      world: W,
      transport: dist.transport,
      threads_per_rank: Number(process.env.MINIMIND_THREADS ?? 0),
      sizes,
      ddp: { params, tensors: grads.length, grad_bytes: params * 4, step_overhead_s: stepOverhead,
        exposed_s: Math.max(0, overlapped - computeOnly),
        busbw_gbps: (busFactor * params * 4) / stepOverhead / 1e9 },
    };
    console.log(JSON.stringify(result));
  }
  grads.forEach((g) => g.dispose());
  dist.close();
}

/** Runs the benchmark in `world` fresh processes (default 2 ranks, shm, 1-64 MB). */
export async function benchAllReduce(opts: AllReduceBenchOptions = {}): Promise<AllReduceBenchResult> {
  const o: Required<AllReduceBenchOptions> = { world: 2, transport: 'shm', sizesMB: [1, 4, 16, 64], iters: 10,
    shmChunkBytes: 1 << 20, tokens: 4096, ...opts };
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: o.world }, (_, rank) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, ...moduleProcessArgs(__filename)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, MINIMIND_BENCH_ALLREDUCE: JSON.stringify(o), RANK: String(rank), LOCAL_RANK: String(rank),
        WORLD_SIZE: String(o.world), LOCAL_WORLD_SIZE: String(o.world), MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port), MINIMIND_DIST_TRANSPORT: o.transport,
        MINIMIND_THREADS: process.env.MINIMIND_THREADS ?? '1' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench allreduce: rank ${rank} exited with ${code}`))));
  })));
  return JSON.parse(outputs[0].trim().split('\n').pop()!) as AllReduceBenchResult;
}

if (require.main === module && process.env.MINIMIND_BENCH_ALLREDUCE) {
  worker().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
