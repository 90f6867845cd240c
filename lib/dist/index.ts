// Data-parallel training across processes ("ranks"), on one machine or several, like torch's DDP.
//
// Each rank runs the same training command on its own shard of the data. The trainer (lib/train/trainer.ts)
// calls this API so that every rank ends each optimizer step with the same weights:
//   - at the start, broadcast(params) copies rank 0's weights to every rank;
//   - during the last micro-batch's backward pass, the gradients of each layer are averaged as soon as the
//     backward has gone past that layer (allReduceMeanStart, see overlap.ts), in the background while the
//     earlier layers are back-propagated; waitAll() before the optimizer step. So every rank takes the
//     same optimizer step, and most of the communication hides behind computation;
//   - allReduceNumbers([loss, ...]) averages metrics; rank 0 alone writes checkpoints and metrics.
// The ranks find each other through torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT), set by `minimind-native launch`, torchrun, or by hand (Slurm: SLURM_PROCID,
// SLURM_NTASKS and SLURM_LOCALID stand in for the first three when MASTER_ADDR is set). Rank 0 hosts the
// rendezvous store (store.ts) on MASTER_PORT; through it the ranks check that they run the same training
// arguments and exchange what their backend needs. Backends:
//   cpu   shared memory between the ranks of one host (native/cpu/shm.h), else a TCP ring (tcp_ring.h);
//         results are bit-identical on every rank;
//   nccl  CUDA tensors, NCCL loaded at run time (native/cuda/nccl.h).
// Every collective has a deadline (MINIMIND_DIST_TIMEOUT seconds, default 300; the rendezvous waits
// MINIMIND_DIST_RDZV_TIMEOUT, default 60) and notices a dead peer, so a failed rank never hangs the others.
// Collectives block the thread until every rank has joined, except the started all-reduces, which run on a
// background thread (cpu) or their own CUDA stream (nccl) until waitAll(); all keep one order on every rank.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { native } from '../native';
import { DType, Device } from '../tensor/dtype';
import { allocPersistent, backend as memoryOf, freePersistent } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import { StoreClient, StoreServer } from './store';

export type Backend = 'cpu' | 'nccl';
export type Transport = 'shm' | 'tcp';

/** Where this process sits in the run, from torchrun's environment variables. */
export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

export interface DistOptions {
  /** 'cpu' (default, or MINIMIND_DIST_BACKEND) or 'nccl'. */
  backend?: Backend;
  /** cpu backend: 'shm' when every rank is on this host, else 'tcp' (default, or MINIMIND_DIST_TRANSPORT). */
  transport?: Transport | 'auto';
  /** Seconds any collective may wait for the other ranks (default MINIMIND_DIST_TIMEOUT or 300). */
  timeout?: number;
  /** Seconds the rendezvous may take (default MINIMIND_DIST_RDZV_TIMEOUT or 60). */
  rendezvousTimeout?: number;
  /** Training arguments that must be the same on every rank (checked at rendezvous). */
  config?: unknown;
  /** Environment to read instead of process.env (tests). */
  env?: NodeJS.ProcessEnv;
  /** shm transport: bytes per rank slot (default 1 MiB). */
  shmChunkBytes?: number;
}

const int = (name: string, text: string): number => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0) throw new Error(`distributed: ${name}=${JSON.stringify(text)} is not a whole number`);
  return v;
};

/** Reads the launcher's variables; null when this process is not part of a multi-rank run. */
export function readDistEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | null {
  const slurm = env.WORLD_SIZE === undefined && env.SLURM_PROCID !== undefined && env.MASTER_ADDR !== undefined;
  const worldText = slurm ? env.SLURM_NTASKS : env.WORLD_SIZE;
  if (worldText === undefined) return null;
  const worldSize = int('WORLD_SIZE', worldText);
  if (worldSize <= 1) return null;
  const rankText = slurm ? env.SLURM_PROCID : env.RANK;
  if (rankText === undefined) throw new Error(`distributed: WORLD_SIZE=${worldSize} but RANK is not set`);
  const rank = int('RANK', rankText);
  if (rank >= worldSize) throw new Error(`distributed: RANK=${rank} must be below WORLD_SIZE=${worldSize}`);
  const localRankText = slurm ? env.SLURM_LOCALID : env.LOCAL_RANK;
  const localWorldText = slurm ? env.SLURM_NTASKS_PER_NODE : env.LOCAL_WORLD_SIZE;
  return {
    rank,
    worldSize,
    localRank: localRankText === undefined ? rank : int('LOCAL_RANK', localRankText),
    localWorldSize: localWorldText === undefined ? worldSize : int('LOCAL_WORLD_SIZE', localWorldText),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: env.MASTER_PORT === undefined ? 29500 : int('MASTER_PORT', env.MASTER_PORT),
  };
}

/** A JSON text with sorted keys, so equal objects hash equally. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v) ?? 'null';
}

const isLoopback = (host: string) => host === 'localhost' || host.startsWith('127.') || host === '::1';

/** What the CUDA build's NCCL binding says is missing, or '' when `--backend nccl` can run. */
export function ncclUnavailableReason(): string {
  const reason = native.cuda.ncclUnavailableReason as (() => string) | undefined;
  if (!reason) return 'this build has no CUDA backend (it was compiled without nvcc), so NCCL cannot be used';
  return reason();
}

/** A buffer in native (cpu) or device (cuda) memory. */
interface Segment {
  address: number;
  bytes: number;
}

/**
 * A reusable flat buffer: copies several segments into one place and back, so that a collective over many
 * tensors is one call (the bucket of DDP).
 */
class Bucket {
  private address = 0;
  private capacity = 0;

  constructor(private readonly device: Device) {}

  /** Runs `op` on the segments as one contiguous buffer (the segment itself when there is one). */
  run(segments: Segment[], op: (address: number, bytes: number) => void): void {
    if (segments.length === 1) {
      op(segments[0].address, segments[0].bytes);
      return;
    }
    const memory = memoryOf(this.device);
    const total = segments.reduce((n, s) => n + s.bytes, 0);
    if (this.capacity < total) {
      this.free();
      this.address = allocPersistent(this.device, total);
      this.capacity = total;
    }
    let offset = 0;
    for (const s of segments) {
      memory.copy(this.address + offset, s.address, s.bytes);
      offset += s.bytes;
    }
    op(this.address, total);
    offset = 0;
    for (const s of segments) {
      memory.copy(s.address, this.address + offset, s.bytes);
      offset += s.bytes;
    }
  }

  free(): void {
    if (this.capacity) freePersistent(this.device, this.address, this.capacity);
    this.address = 0;
    this.capacity = 0;
  }
}

/** The per-backend primitives Dist builds on. */
interface Collectives {
  device: Device;
  /** In place over the segments taken as one buffer; mean or sum over ranks. f64 only on the cpu backend. */
  allReduce(segments: Segment[], dtype: 'f32' | 'f64', mean: boolean): void;
  /** An f32 all-reduce that runs in the background until wait(). */
  allReduceStart(segments: Segment[], mean: boolean): void;
  wait(): void;
  broadcast(segments: Segment[], root: number): void;
  abort(): void;
  close(): void;
}

function cpuCollectives(handle: number, worldSize: number): Collectives {
  const cpu = native.cpu;
  const bucket = new Bucket('cpu');
  return {
    device: 'cpu',
    // The native side walks the segments itself (shm copies them straight into shared memory): no bucket.
    allReduce: (segments, dtype, mean) => cpu.distAllReduce(handle, segments.map((s) => s.address),
      segments.map((s) => s.bytes), dtype === 'f64' ? 1 : 0, mean ? 1 / worldSize : 1),
    allReduceStart: (segments, mean) => cpu.distAllReduceStart(handle, segments.map((s) => s.address),
      segments.map((s) => s.bytes), 0, mean ? 1 / worldSize : 1),
    wait: () => cpu.distWait(handle),
    broadcast: (segments, root) => bucket.run(segments, (address, bytes) => cpu.distBroadcast(handle, address, bytes, root)),
    abort: () => cpu.distAbort(handle),
    close: () => {
      cpu.distClose(handle);
      bucket.free();
    },
  };
}

function ncclCollectives(handle: number): Collectives {
  const cuda = native.cuda;
  const bucket = new Bucket('cuda');
  return {
    device: 'cuda',
    allReduce: (segments, dtype, mean) => {
      if (dtype !== 'f32') throw new Error(`nccl backend: all-reduce of ${dtype} is not supported`);
      bucket.run(segments, (address, bytes) => cuda.ncclAllReduce(handle, address, bytes / 4, 0, mean));
    },
    // One NCCL group of in-place all-reduces, one per tensor: no bucket copy to wait for.
    allReduceStart: (segments, mean) => cuda.ncclAllReduceStart(handle, segments.map((s) => s.address),
      segments.map((s) => s.bytes / 4), 0, mean),
    wait: () => cuda.ncclWait(handle),
    broadcast: (segments, root) => bucket.run(segments, (address, bytes) => cuda.ncclBroadcast(handle, address, bytes, root)),
    abort: () => cuda.ncclClose(handle, true),
    close: () => {
      cuda.ncclClose(handle, false);
      bucket.free();
    },
  };
}

/** One rank's view of the run. Every rank must call the same collectives in the same order. */
export class Dist {
  /** Host-visible scratch for allReduceNumbers. */
  private numbers = { address: 0, bytes: 0 };
  private closed = false;

  constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly localRank: number,
    readonly localWorldSize: number,
    readonly backend: Backend,
    /** How the cpu backend moves data ('shm' or 'tcp'); 'nccl' for the nccl backend. */
    readonly transport: Transport | 'nccl',
    private readonly comm: Collectives,
    private readonly store: StoreClient,
    private readonly server: StoreServer | null,
  ) {}

  /** Rank 0 writes checkpoints, metrics and logs. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  get device(): Device {
    return this.comm.device;
  }

  private scratch(bytes: number): number {
    if (this.numbers.bytes < bytes) {
      if (this.numbers.bytes) freePersistent(this.device, this.numbers.address, this.numbers.bytes);
      this.numbers = { address: allocPersistent(this.device, bytes), bytes };
    }
    return this.numbers.address;
  }

  private segments(tensors: Tensor[], what: string, dtypes: DType[]): Segment[] {
    if (this.closed) throw new Error(`dist.${what}: the communicator is closed`);
    return tensors.map((t) => {
      if (t.device !== this.device || !dtypes.includes(t.dtype)) {
        throw new Error(`dist.${what}: ${t.describe()} must be ${dtypes.join('/')} on ${this.device} ` +
          `for the ${this.backend} backend`);
      }
      return { address: t.ptr, bytes: t.bytes };
    });
  }

  /**
   * Replaces each f32 tensor by its mean over the ranks, in place (identical bits on every rank). All the
   * tensors go in one collective, as one bucket.
   */
  allReduceMean(tensors: Tensor[]): void {
    const segments = this.segments(tensors, 'allReduceMean', ['f32']);
    this.guard(() => this.comm.allReduce(segments, 'f32', true));
  }

  /**
   * Starts replacing each f32 tensor by its mean over the ranks, in the background: the tensors must not be
   * touched until waitAll(). Ranks must start the same tensors in the same order.
   */
  allReduceMeanStart(tensors: Tensor[]): void {
    const segments = this.segments(tensors, 'allReduceMeanStart', ['f32']);
    this.guard(() => this.comm.allReduceStart(segments, true));
  }

  /** Returns when every started all-reduce has finished (and throws if one failed). */
  waitAll(): void {
    if (this.closed) throw new Error('dist.waitAll: the communicator is closed');
    this.guard(() => this.comm.wait());
  }

  /** Overwrites every rank's tensors with rank `root`'s (any dtype), in one collective. */
  broadcast(tensors: Tensor[], root = 0): void {
    const segments = this.segments(tensors, 'broadcast', ['f32', 'bf16', 'i32', 'u16']);
    this.guard(() => this.comm.broadcast(segments, root));
  }

  /** The mean over ranks of each value (for metrics: loss, tokens/s, flags). */
  allReduceNumbers(values: number[]): number[] {
    if (this.closed) throw new Error('dist.allReduceNumbers: the communicator is closed');
    if (values.length === 0) return [];
    // f64 on the cpu backend; NCCL reduces f32 (metrics do not need more).
    const host = this.device === 'cpu' ? Float64Array.from(values) : Float32Array.from(values);
    const address = this.scratch(host.byteLength);
    const memory = memoryOf(this.device);
    memory.upload(address, host);
    this.guard(() => this.comm.allReduce([{ address, bytes: host.byteLength }], this.device === 'cpu' ? 'f64' : 'f32', true));
    memory.download(host, address);
    return Array.from(host);
  }

  /** Returns once every rank has called barrier(). */
  barrier(): void {
    this.allReduceNumbers([0]);
  }

  /** Runs a collective; on failure tells the peers to stop waiting, and names this rank in the error. */
  private guard(collective: () => void): void {
    try {
      collective();
    } catch (e) {
      this.comm.abort();
      throw new Error(`rank ${this.rank}: ${(e as Error).message}`);
    }
  }

  /** Frees the communicator and leaves the store (rank 0 stops hosting it). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.comm.close();
    if (this.numbers.bytes) freePersistent(this.device, this.numbers.address, this.numbers.bytes);
    this.numbers = { address: 0, bytes: 0 };
    this.store.close();
    void this.server?.close();
  }
}

interface RankInfo {
  host: string;
  pid: number;
  worldSize: number;
  configHash: string;
  config: string;
}

/** Names the top-level fields whose values differ between two canonical JSON texts. */
function differingFields(a: string, b: string): string {
  try {
    const x = JSON.parse(a) as Record<string, unknown>;
    const y = JSON.parse(b) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(x ?? {}), ...Object.keys(y ?? {})])];
    const differ = keys.filter((k) => JSON.stringify(x?.[k]) !== JSON.stringify(y?.[k]));
    return differ.length ? differ.join(', ') : 'the arguments';
  } catch {
    return 'the arguments';
  }
}

const envNumber = (env: NodeJS.ProcessEnv, name: string, fallback: number): number => {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const v = Number(text);
  if (!(v > 0)) throw new Error(`distributed: ${name}=${JSON.stringify(text)} must be a positive number of seconds`);
  return v;
};

/**
 * Joins the run described by the environment: null when there is only one rank (WORLD_SIZE unset or 1).
 * Asynchronous because the rendezvous talks to the store; everything after it is synchronous.
 */
export async function initDistributed(opts: DistOptions = {}): Promise<Dist | null> {
  const env = opts.env ?? process.env;
  const where = readDistEnv(env);
  if (!where) return null;
  const { rank, worldSize, masterAddr } = where;
  const backend = opts.backend ?? (env.MINIMIND_DIST_BACKEND as Backend | undefined) ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'nccl') throw new Error(`distributed: unknown backend '${String(backend)}' (cpu or nccl)`);
  if (backend === 'nccl') {
    const reason = ncclUnavailableReason();
    if (reason) throw new Error(`--backend nccl: ${reason}. Use --backend cpu for CPU training.`);
  }
  const timeout = opts.timeout ?? envNumber(env, 'MINIMIND_DIST_TIMEOUT', 300);
  const rdzvTimeout = opts.rendezvousTimeout ?? envNumber(env, 'MINIMIND_DIST_RDZV_TIMEOUT', 60);
  // Under torchrun the agent's own store already holds MASTER_PORT; ours takes the next port.
  const storePort = where.masterPort + (env.TORCHELASTIC_USE_AGENT_STORE === 'True' ? 1 : 0);

  const server = rank === 0 ? await StoreServer.listen(storePort, isLoopback(masterAddr) ? masterAddr : undefined) : null;
  let store: StoreClient | null = null;
  try {
    store = await StoreClient.connect({ host: masterAddr, port: storePort, worldSize, connectTimeout: rdzvTimeout,
      timeout: rdzvTimeout });
    if ((await store.add(`claim/${rank}`, 1)) > 1) {
      throw new Error(`rendezvous: two processes claim RANK=${rank} (check RANK / --node-rank on each node)`);
    }
    const config = canonicalJson(opts.config ?? null);
    const mine: RankInfo = { host: os.hostname(), pid: process.pid, worldSize,
      configHash: createHash('sha256').update(config).digest('hex'), config };
    await store.set(`rank/${rank}`, JSON.stringify(mine));
    const infos: RankInfo[] = [];
    for (let r = 0; r < worldSize; r++) infos.push(JSON.parse(await store.getString(`rank/${r}`)) as RankInfo);
    for (let r = 1; r < worldSize; r++) {
      if (infos[r].worldSize !== worldSize) {
        throw new Error(`rendezvous: rank ${r} has WORLD_SIZE=${infos[r].worldSize}, rank ${rank} has ${worldSize}`);
      }
      if (infos[r].configHash !== infos[0].configHash) {
        throw new Error(`rendezvous: rank ${r} runs different training arguments than rank 0 ` +
          `(${differingFields(infos[0].config, infos[r].config)}); every rank must run the same command`);
      }
    }
    let comm: Collectives;
    let transport: Transport | 'nccl';
    if (backend === 'nccl') {
      transport = 'nccl';
      if (rank === 0) await store.set('nccl/id', native.cuda.ncclUniqueId() as Buffer);
      const id = await store.get('nccl/id');
      await store.barrier('nccl-id');  // nobody needs the store while ncclCommInitRank blocks
      comm = ncclCollectives(native.cuda.ncclInit(rank, worldSize, id, where.localRank) as number);
    } else {
      const wanted = opts.transport ?? (env.MINIMIND_DIST_TRANSPORT as Transport | 'auto' | undefined) ?? 'auto';
      const oneHost = infos.every((i) => i.host === infos[0].host);
      transport = wanted === 'auto' ? (oneHost ? 'shm' : 'tcp') : wanted;
      if (transport === 'shm' && !oneHost) {
        throw new Error('distributed: the shm transport needs every rank on one host; use MINIMIND_DIST_TRANSPORT=tcp');
      }
      if (transport === 'shm') {
        const chunk = opts.shmChunkBytes ?? 1 << 20;
        const name = rank === 0 ? `/minimind-${process.pid}-${Math.random().toString(36).slice(2, 10)}` : await store.getString('shm/name');
        const handle = native.cpu.distShmOpen(name, rank, worldSize, chunk, timeout) as number;
        if (rank === 0) await store.set('shm/name', name);
        await store.barrier('shm-open');
        if (rank === 0) native.cpu.distShmUnlink(name);  // the mappings stay; nothing is left in /dev/shm
        comm = cpuCollectives(handle, worldSize);
      } else if (transport === 'tcp') {
        const bindHost = isLoopback(masterAddr) ? store.localAddress : '';
        const listener = native.cpu.distTcpListen(bindHost) as { fd: number; port: number };
        const host = store.localAddress.replace(/^::ffff:/, '');
        await store.set(`tcp/${rank}`, JSON.stringify({ host, port: listener.port }));
        const next = JSON.parse(await store.getString(`tcp/${(rank + 1) % worldSize}`)) as { host: string; port: number };
        await store.barrier('tcp-addresses');  // nobody needs the store while the ring connects (it blocks)
        const handle = native.cpu.distTcpConnect(rank, worldSize, listener.fd, next.host, next.port, rdzvTimeout) as number;
        native.cpu.distSetTimeout(handle, timeout);  // connecting had the rendezvous deadline; collectives get theirs
        comm = cpuCollectives(handle, worldSize);
      } else {
        throw new Error(`distributed: unknown transport '${String(transport)}' (shm, tcp or auto)`);
      }
    }
    await store.barrier('ready');
    // From here on the store is idle: it must not keep a process alive that forgot close().
    store.unref();
    server?.unref();
    return new Dist(rank, worldSize, where.localRank, where.localWorldSize, backend, transport, comm, store, server);
  } catch (e) {
    store?.close();
    await server?.close();
    throw e;
  }
}
