// Tensor: a typed view (address, shape, dtype, device) of native memory, contiguous and row-major.
// Tensors made by ops live in the step arena and die at the end of the step; parameters and other
// long-lived tensors are persistent and freed with dispose().
import { Arena, ArenaMark, allocPersistent, backend, freePersistent, stepArena } from './memory';
import { DTYPE_BYTES, DType, Device, HostArray, hostArray, numel } from './dtype';

export type Shape = readonly number[];

interface Storage {
  /** The arena and its generation when allocated, or null for a persistent allocation. */
  arena: Arena | null;
  generation: number;
  disposed: boolean;
}

export class Tensor {
  readonly size: number;
  /** Set by ops when any input requires a gradient (see autograd/tape). */
  requiresGrad = false;
  /** The gradient, same shape, allocated on first use by the backward pass. */
  grad: Tensor | null = null;
  /** Keep this activation's gradient after backward (autograd releases it otherwise), as PyTorch's retain_grad. */
  retainGrad = false;
  /** For debugging and checkpoints: a parameter's name. */
  name = '';

  private constructor(
    private readonly address: number,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly device: Device,
    private readonly storage: Storage,
    /** False for views (reshapeView, narrowView): only the owner frees the memory. */
    private owns = true,
  ) {
    this.size = numel(shape);
  }

  get bytes(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The native address, checked: using an arena tensor after its step ended is a bug, so it throws. */
  get ptr(): number {
    const s = this.storage;
    if (s.disposed) throw new Error(`tensor ${this.describe()} was ${s.arena ? 'released' : 'disposed'}`);
    if (s.arena && s.arena.generation !== s.generation) {
      throw new Error(`tensor ${this.describe()} belongs to a finished step (its arena was reset)`);
    }
    return this.address;
  }

  get isPersistent(): boolean {
    return this.storage.arena === null;
  }

  describe(): string {
    return `${this.name ? this.name + ' ' : ''}[${this.shape.join(', ')}] ${this.dtype} ${this.device}`;
  }

  /** A new step-arena tensor, zero-filled unless `zero` is false. */
  static empty(shape: Shape, dtype: DType = 'f32', device: Device = 'cpu', zero = true): Tensor {
    const arena = stepArena(device);
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    const address = arena.alloc(bytes);
    if (zero) backend(device).zero(address, bytes);
    return new Tensor(address, [...shape], dtype, device, { arena, generation: arena.generation, disposed: false });
  }

  static zeros(shape: Shape, dtype: DType = 'f32', device: Device = 'cpu'): Tensor {
    return Tensor.empty(shape, dtype, device, true);
  }

  /** A persistent tensor (zero-filled); free it with dispose(). */
  static persistent(shape: Shape, dtype: DType = 'f32', device: Device = 'cpu'): Tensor {
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    const address = allocPersistent(device, bytes);
    if (device !== 'cpu') backend(device).zero(address, bytes); // the CPU allocator zero-fills; cudaMalloc does not
    return new Tensor(address, [...shape], dtype, device, { arena: null, generation: 0, disposed: false });
  }

  /** Copies host data into a new tensor (step arena unless persistent). */
  static from(data: ArrayLike<number> | HostArray, shape: Shape, dtype: DType = 'f32', device: Device = 'cpu',
    persistent = false): Tensor {
    const t = persistent ? Tensor.persistent(shape, dtype, device) : Tensor.empty(shape, dtype, device, false);
    t.upload(data);
    return t;
  }

  /** Overwrites the contents with host data (converted to this dtype's host array type). */
  upload(data: ArrayLike<number> | HostArray): this {
    if (data.length !== this.size) {
      throw new Error(`upload to ${this.describe()}: got ${data.length} values, expected ${this.size}`);
    }
    const host = hostArray(this.dtype, this.size);
    if (host.constructor === data.constructor) backend(this.device).upload(this.ptr, data as HostArray);
    else {
      host.set(data as ArrayLike<number>);
      backend(this.device).upload(this.ptr, host);
    }
    return this;
  }

  /** Copies the contents to a new host array (bf16 comes back as raw 16-bit patterns). */
  toArray(): HostArray {
    const host = hostArray(this.dtype, this.size);
    backend(this.device).download(host, this.ptr);
    return host;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs one element, ${this.describe()} has ${this.size}`);
    return this.toArray()[0];
  }

  zero_(): this {
    backend(this.device).zero(this.ptr, this.bytes);
    return this;
  }

  fill_(value: number): this {
    if (this.dtype !== 'f32') throw new Error(`fill_ is for f32 tensors, not ${this.describe()}`);
    backend(this.device).fill(this.ptr, this.size, value);
    return this;
  }

  /** Copies another tensor of the same size and dtype into this one. */
  copyFrom(src: Tensor): this {
    if (src.size !== this.size || src.dtype !== this.dtype || src.device !== this.device) {
      throw new Error(`copy ${src.describe()} into ${this.describe()}: sizes, dtypes or devices differ`);
    }
    backend(this.device).copy(this.ptr, src.ptr, this.bytes);
    return this;
  }

  /**
   * The same memory under another shape (one dimension may be -1). Shares the storage, so it is valid
   * exactly as long as this tensor; autograd treats it as the same values (see ops/shape.ts for the op).
   */
  reshapeView(shape: Shape): Tensor {
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const resolved = shape.map((d) => (d === -1 ? this.size / known : d));
    if (numel(resolved) !== this.size) {
      throw new Error(`cannot view ${this.describe()} as [${shape.join(', ')}]`);
    }
    return new Tensor(this.ptr, resolved, this.dtype, this.device, this.storage, false);
  }

  /**
   * The same memory under another shape, taking over ownership (this tensor becomes a view): how a reshape's
   * backward hands its output's gradient to its input without copying it.
   */
  reshapeTake(shape: Shape): Tensor {
    const t = this.reshapeView(shape);
    t.owns = this.owns;
    this.owns = false;
    return t;
  }

  /**
   * Inference: frees every arena tensor made since `mark` except this one, which moves down to the mark (see
   * Arena.rewind). Returns the moved tensor, or this one unchanged when the arena cannot rewind. Tensors made
   * since the mark must not be used afterwards (their memory is reused; nothing checks it).
   */
  keepOnlySince(mark: ArenaMark | null): Tensor {
    const arena = this.storage.arena;
    if (!mark || !arena || !this.owns || this.storage.generation !== arena.generation) return this;
    const to = arena.rewind(mark, this.address, this.bytes);
    if (to === null) return this;
    this.storage.disposed = true;
    return new Tensor(to, this.shape, this.dtype, this.device, { arena, generation: arena.generation, disposed: false });
  }

  /** Rows [start, start+count) of the first dimension, sharing memory. */
  narrowView(start: number, count: number): Tensor {
    const rows = this.shape[0];
    if (start < 0 || count < 0 || start + count > rows) {
      throw new Error(`rows [${start}, ${start + count}) out of range for ${this.describe()}`);
    }
    const rowElems = this.size / rows;
    return new Tensor(this.ptr + start * rowElems * DTYPE_BYTES[this.dtype], [count, ...this.shape.slice(1)],
      this.dtype, this.device, this.storage, false);
  }

  /**
   * Gives an arena tensor's memory back to the step arena before the step ends (autograd does this for
   * activation gradients once they are back-propagated). Using the tensor afterwards throws. Views and
   * persistent tensors are left alone.
   */
  release(): void {
    const s = this.storage;
    if (!s.arena || s.disposed || !this.owns || s.arena.generation !== s.generation) return;
    s.arena.free(this.address, this.bytes);
    s.disposed = true;
  }

  /** Frees a persistent tensor (and its persistent gradient). Arena tensors die with their step. */
  dispose(): void {
    if (this.storage.arena || this.storage.disposed || !this.owns) return;
    freePersistent(this.device, this.address, this.bytes);
    this.storage.disposed = true;
    if (this.grad && this.grad.isPersistent) this.grad.dispose();
  }
}
