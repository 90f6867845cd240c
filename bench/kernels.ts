// `minimind-native bench kernels`: every CPU kernel at MiniMind's shapes, as time, GFLOP/s or GB/s and % of
// this machine's measured peak. Each op family adds its cases in bench/kernels/<family>.ts, exporting
// `cases(): KernelCase[]`; this file finds them by directory, so families never edit a shared list.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resetStepArenas } from '../lib/tensor/memory';
import { KernelCase, KernelResult, Machine, measureMachine, runCase } from './harness';

/** All families' cases (files in bench/kernels/, as .ts under jest or .js once compiled). */
export function allKernelCases(): KernelCase[] {
  const dir = path.join(__dirname, 'kernels');
  const files = fs.readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return files.flatMap((f) => (require(path.join(dir, f)) as { cases(): KernelCase[] }).cases());
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
