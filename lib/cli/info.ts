// `minimind-native info [--json]`: version, compiled backends, CUDA devices, CPU features, threads.
import type { Argv, CommandModule } from 'yargs';
import { addonPath, native, root } from '../native';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InfoReport {
  version: string;
  addon: string;
  build: string;
  backends: { cpu: 'compiled'; cuda: 'compiled' | 'not compiled' };
  cuda: { devices: number; runtime_version?: number; driver_version?: number; error?: string;
    names: string[] };
  cpu: { features: string[]; kernel_path: string; threads: number };
}

export function infoReport(): InfoReport {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const cuda = native.cpu.cudaInfo();
  const cpu = native.cpu.cpuInfo();
  const features = (['avx2', 'fma', 'avx512f'] as const).filter((f) => cpu[f]);
  return {
    version: pkg.version,
    addon: path.relative(root, addonPath),
    build: native.buildBackend,
    backends: { cpu: 'compiled', cuda: cuda.compiled ? 'compiled' : 'not compiled' },
    cuda: {
      devices: cuda.deviceCount,
      runtime_version: cuda.runtimeVersion,
      driver_version: cuda.driverVersion,
      error: cuda.error,
      names: cuda.devices.map((d) => `${d.name} (sm_${d.computeCapability.replace('.', '')})`),
    },
    cpu: { features, kernel_path: cpu.kernelPath, threads: native.cpu.threads() },
  };
}

export const infoCommand: CommandModule<object, { json: boolean }> = {
  command: 'info',
  describe: 'Show the version, compiled backends, CUDA devices, CPU features and threads',
  builder: (y: Argv) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
  handler: (argv) => {
    const r = infoReport();
    if (argv.json) {
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    console.log(`minimind-native ${r.version} (addon ${r.addon}, built by ${r.build})`);
    console.log(`backends: cpu compiled, cuda ${r.backends.cuda}`);
    console.log(`cuda devices: ${r.cuda.devices}${r.cuda.error ? ` (${r.cuda.error})` : ''}`);
    for (const n of r.cuda.names) console.log(`  ${n}`);
    console.log(`cpu: ${r.cpu.kernel_path} kernels (features: ${r.cpu.features.join(', ') || 'none'}), ${r.cpu.threads} threads`);
  },
};
