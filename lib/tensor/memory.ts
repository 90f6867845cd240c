// Native memory for tensors. Two kinds of allocation, as the design asks:
//   - persistent: parameters, gradients, optimizer state, KV caches. Allocated once, freed by dispose().
//   - the step arena: activations and their gradients. A bump allocator over one native block, reset after
//     each optimizer step, so a training step allocates nothing from the system once warmed up. Blocks
//     released during the step (an activation gradient once back-propagated) are reused by later
//     allocations of the same size, so the backward pass mostly runs in memory the forward pass left free.
// The JavaScript garbage collector never owns a large buffer: it only sees numbers (addresses).
import { MemoryKernels, native } from '../native';
import { Device } from './dtype';

export function backend(device: Device): MemoryKernels & Record<string, (...args: never[]) => unknown> {
  if (device === 'cpu') return native.cpu;
  if (!native.cuda.alloc) {
    throw new Error('device cuda: the CUDA backend is not available in this build (see `minimind-native info`)');
  }
  return native.cuda as MemoryKernels & Record<string, (...args: never[]) => unknown>;
}

const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Counts live persistent bytes per device, for memory reports and leak tests. */
export const persistentBytes: Record<Device, number> = { cpu: 0, cuda: 0 };

export function allocPersistent(device: Device, bytes: number): number {
  const address = backend(device).alloc(bytes);
  persistentBytes[device] += bytes;
  return address;
}

export function freePersistent(device: Device, address: number, bytes: number): void {
  backend(device).free(address);
  persistentBytes[device] -= bytes;
}

export interface ArenaMark {
  chunk: number;
  offset: number;
  used: number;
  extent: number;
}

interface Chunk {
  base: number;
  size: number;
}

/**
 * A bump allocator over native chunks, with free lists. When a step needs more than the current chunk, another
 * chunk is added; the next reset() replaces all chunks by one block as large as the high-water mark, so from
 * the second step on every step runs inside one block. free() puts a block on the free list of its size:
 * activations come in few distinct sizes (every layer repeats the same shapes), so exact-size reuse suffices.
 */
export class Arena {
  private chunks: Chunk[] = [];
  private offset = 0; // in the last chunk
  private used = 0; // bytes handed out and not freed since the last reset
  // Where the bump pointer would be if the step ran in one block (rewinds included), and its peak this step:
  // the size of the block reset() consolidates to.
  private extent = 0;
  private peakExtent = 0;
  private readonly freeLists = new Map<number, number[]>(); // size -> addresses
  /** Incremented by reset(): tensors remember the generation they were allocated in. */
  generation = 0;
  /** The most bytes live at once in the current step. */
  highWater = 0;

  constructor(
    readonly device: Device,
    private initialBytes = 1 << 20,
  ) {}

  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    this.used += size;
    this.highWater = Math.max(this.highWater, this.used);
    const reused = this.freeLists.get(size)?.pop();
    if (reused !== undefined) return reused;
    this.extent += size;
    this.peakExtent = Math.max(this.peakExtent, this.extent);
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.offset + size > chunk.size) {
      const chunkSize = Math.max(size, this.initialBytes, chunk ? chunk.size * 2 : 0);
      chunk = { base: backend(this.device).alloc(chunkSize), size: chunkSize };
      this.chunks.push(chunk);
      this.offset = 0;
    }
    const address = chunk.base + this.offset;
    this.offset += size;
    return address;
  }

  /** Returns a block from alloc(bytes) for reuse within this step. */
  free(address: number, bytes: number): void {
    const size = align(Math.max(bytes, 1));
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(address);
    this.used -= size;
  }

  /**
   * Where the next allocation would go, for rewind() (null when blocks freed this step could be reused, which
   * would break the stack order rewind relies on).
   */
  mark(): ArenaMark | null {
    if ([...this.freeLists.values()].some((l) => l.length)) return null;
    return { chunk: this.chunks.length - 1, offset: this.offset, used: this.used, extent: this.extent };
  }

  /**
   * Frees everything allocated since `mark` except one block (`bytes` at `address`), which moves down to the
   * mark; returns its new address, or null when it cannot move (not on the CPU). While the arena grows (its
   * first step), chunks added since the mark hold only dead blocks besides this one, so it moves to the start
   * of the newest chunk instead, and the block reset() makes is sized as if it had moved to the mark. Only the
   * caller knows that nothing else allocated since the mark is still in use (inference, between layers).
   */
  rewind(mark: ArenaMark, address: number, bytes: number): number | null {
    const size = align(Math.max(bytes, 1));
    const last = this.chunks.length - 1;
    if (this.device !== 'cpu' || last < 0 || mark.chunk < 0) return null;
    const grown = mark.chunk !== last;
    if (grown && size > this.chunks[last].size) return null;
    const to = this.chunks[last].base + (grown ? 0 : mark.offset);
    if (!grown && address < to) return null; // made before the mark: not this rewind's to move
    backend(this.device).copy(to, address, bytes); // memmove: the block may overlap its new place
    this.offset = (grown ? 0 : mark.offset) + size;
    this.used = mark.used + size;
    this.extent = mark.extent + size;
    return to;
  }

  /** Bytes currently reserved from the system. */
  get reservedBytes(): number {
    return this.chunks.reduce((s, c) => s + c.size, 0);
  }

  /** Frees everything allocated since the last reset. Tensors from before become invalid. */
  reset(): void {
    if (this.chunks.length > 1) {
      // The step's live bytes peaked at highWater, but free-list reuse is by exact size, so the bump pointer
      // may go further: one block as large as the bump pointer's peak in a single block.
      const size = Math.max(this.peakExtent, 1);
      for (const c of this.chunks) backend(this.device).free(c.base);
      this.chunks = [{ base: backend(this.device).alloc(size), size }];
      // Touched now, at the end of the step that sized it: the next step would touch all of it anyway, and
      // should not pay the page faults inside its own (timed, latency-sensitive) work.
      backend(this.device).zero(this.chunks[0].base, size);
    }
    this.freeLists.clear();
    this.offset = 0;
    this.used = 0;
    this.extent = 0;
    this.peakExtent = 0;
    this.highWater = 0;
    this.generation++;
  }

  /** Returns all memory to the system. */
  release(): void {
    for (const c of this.chunks) backend(this.device).free(c.base);
    this.chunks = [];
    this.freeLists.clear();
    this.offset = 0;
    this.used = 0;
    this.extent = 0;
    this.peakExtent = 0;
    this.highWater = 0;
    this.generation++;
  }
}

const arenas: Partial<Record<Device, Arena>> = {};

/** The step arena of a device: where ops put their outputs and activation gradients. */
export function stepArena(device: Device): Arena {
  return (arenas[device] ??= new Arena(device));
}

/** Ends a step: every arena tensor is released (parameters, grads and optimizer state are persistent). */
export function resetStepArenas(): void {
  for (const a of Object.values(arenas)) a?.reset();
}
