// `minimind-native bench kernels`: every CPU kernel at MiniMind's shapes, as time, GFLOP/s or GB/s and % of
// this machine's measured peak. Each op family adds its cases in bench/kernels/<family>.ts.
import { resetStepArenas } from '../lib/tensor/memory';
import { KernelCase, KernelResult, Machine, measureMachine, runCase } from './harness';
import { elementwiseCases } from './kernels/elementwise';

/** All families' cases; a family appends its list here. */
export function allKernelCases(): KernelCase[] {
  return [...elementwiseCases()];
}

export interface KernelBenchReport {
  machine: Machine;
  kernels: KernelResult[];
}

/** Runs the cases whose kernel name contains `filter` (all when empty), reporting each as it finishes. */
export function benchKernels(filter = '', onResult?: (r: KernelResult) => void): KernelBenchReport {
  const machine = measureMachine();
  const kernels: KernelResult[] = [];
  for (const c of allKernelCases()) {
    if (filter && !c.kernel.includes(filter)) continue;
    try {
      const r = runCase(c, machine);
      kernels.push(r);
      onResult?.(r);
    } finally {
      resetStepArenas();
    }
  }
  return { machine, kernels };
}
