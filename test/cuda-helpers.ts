// Shared by the CUDA kernel tests: which backends to test, and buffers on a CUDA backend.
// The emulated device always runs, under three fiber orders with poisoned shared memory; the GPU is added
// when MINIMIND_TEST_GPU=1 (npm run test:gpu) and the backend was compiled.
import { CudaKernels, configureEmulator, cudaDevice, cudaEmu } from '../lib/cuda/kernels';
import { bf16ToF32, f32ToBf16 } from '../lib/tensor/dtype';

export interface Backend {
  name: string;
  k: CudaKernels;
  /** Called before each test: sets the emulator's schedule. */
  setup(): void;
}

export function backends(): Backend[] {
  const list: Backend[] = [
    { name: 'emu fwd', k: cudaEmu, setup: () => configureEmulator('fwd') },
    { name: 'emu rev', k: cudaEmu, setup: () => configureEmulator('rev') },
    { name: 'emu rand', k: cudaEmu, setup: () => configureEmulator('rand', 7) },
  ];
  if (process.env.MINIMIND_TEST_GPU === '1') {
    if (!cudaDevice) throw new Error('MINIMIND_TEST_GPU=1 but the CUDA backend is not compiled into this build');
    list.push({ name: 'gpu', k: cudaDevice, setup: () => {} });
  }
  return list;
}

/** Buffers on one backend, freed together. */
export class Buffers {
  private live: number[] = [];
  constructor(readonly k: CudaKernels) {}

  alloc(bytes: number): number {
    const p = this.k.alloc(bytes);
    this.live.push(p);
    return p;
  }
  f32(values: ArrayLike<number>): number {
    const host = Float32Array.from(values);
    const p = this.alloc(host.byteLength);
    this.k.upload(p, host);
    return p;
  }
  /** Uploads values rounded to bf16. */
  bf16(values: ArrayLike<number>): number {
    const host = f32ToBf16(Float32Array.from(values));
    const p = this.alloc(host.byteLength);
    this.k.upload(p, host);
    return p;
  }
  i32(values: ArrayLike<number>): number {
    const host = Int32Array.from(values);
    const p = this.alloc(host.byteLength);
    this.k.upload(p, host);
    return p;
  }
  readF32(p: number, n: number): Float32Array {
    const host = new Float32Array(n);
    this.k.synchronize();
    this.k.download(host, p);
    return host;
  }
  readBf16(p: number, n: number): Float32Array {
    const host = new Uint16Array(n);
    this.k.synchronize();
    this.k.download(host, p);
    return bf16ToF32(host);
  }
  free(): void {
    for (const p of this.live) this.k.free(p);
    this.live = [];
  }
}

/** Values as the kernels see them after a bf16 upload. */
export function roundBf16(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(bf16ToF32(f32ToBf16(Float32Array.from(values))));
}

/** describe() once per backend (named by it); `fixture.buf` is fresh Buffers for each test, freed after it. */
export function describeEachBackend(body: (backend: Backend, fixture: { buf: Buffers }) => void): void {
  describe.each(backends().map((b) => [b.name, b] as [string, Backend]))('%s', (_name, backend) => {
    const fixture = {} as { buf: Buffers };
    beforeEach(() => {
      backend.setup();
      fixture.buf = new Buffers(backend.k);
    });
    afterEach(() => fixture.buf.free());
    body(backend, fixture);
  });
}
