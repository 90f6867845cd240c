// Loads the native addon (build/Release first, then prebuilds/) and describes what it exports.
// Kernels are grouped by backend: `native.cpu.*` always, `native.cuda.*` when the CUDA backend is compiled.
// Each op family in lib/ops/ declares the typed signatures of the kernels it calls.
import * as fs from 'node:fs';
import * as path from 'node:path';
import nodeGypBuild = require('node-gyp-build');

/** A kernel takes raw addresses and sizes (numbers) and returns what its family documents. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KernelTable = Record<string, (...args: any[]) => any>;

export interface CudaInfo {
  compiled: boolean;
  deviceCount: number;
  runtimeVersion?: number;
  driverVersion?: number;
  error?: string;
  devices: { name: string; computeCapability: string; totalMemoryBytes: number }[];
}

export interface CpuInfo {
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  kernelPath: string;
}

/** What every backend provides for memory; ops add their kernels beside these. */
export interface MemoryKernels {
  alloc(bytes: number): number;
  free(address: number): void;
  upload(address: number, src: ArrayBufferView): void;
  download(dst: ArrayBufferView, address: number): void;
  copy(dst: number, src: number, bytes: number): void;
  zero(address: number, bytes: number): void;
  fill(address: number, count: number, value: number): void;
}

export interface NativeAddon {
  cpu: MemoryKernels & KernelTable & {
    setThreads(n: number): number;
    threads(): number;
    cpuInfo(): CpuInfo;
    cudaInfo(): CudaInfo;
  };
  cuda: Partial<MemoryKernels> & KernelTable;
  /** The CUDA kernels run by the CPU emulator (always built); see lib/cuda/kernels.ts. */
  cudaEmu: MemoryKernels & KernelTable;
  families: string[];
  buildBackend: string;
  napiVersion: number;
}

/** The package root: lib/ under jest, dist/lib/ once compiled, so walk up instead of a fixed `..`. */
export function packageRoot(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`minimind-native: package root not found above ${start}`);
    dir = parent;
  }
}

export const root = packageRoot();

/** MINIMIND_ADDON=path/to/minimind.node loads a specific build (e.g. a second build directory). */
export const addonPath: string = process.env.MINIMIND_ADDON
  ? path.resolve(process.env.MINIMIND_ADDON)
  : nodeGypBuild.path(root);

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require(addonPath) as NativeAddon;

/** Device selection: MINIMIND_CUDA_EMULATE=1 makes device 'cuda' run on the CPU emulator (tests without a GPU). */
export const cudaEmulated = process.env.MINIMIND_CUDA_EMULATE === '1';
if (cudaEmulated) native.cuda = native.cudaEmu;
