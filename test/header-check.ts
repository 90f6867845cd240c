// Compiles a C++ check file with the host compiler (syntax and static_asserts only): how the hand-written API
// headers (native/cuda/nccl_api.h, cublaslt_api.h) are checked against the vendor headers they stand in for.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const cudaHome = process.env.CUDA_HOME ?? process.env.CUDA_PATH ?? '/usr/local/cuda';

/** The first folder that holds `header`, or undefined. */
export function findInclude(header: string, folders: (string | undefined)[]): string | undefined {
  return folders.find((d): d is string => !!d && fs.existsSync(path.join(d, header)));
}

/** Compiles `source` with native/ and `includes` on the include path; expects no diagnostics at all. */
export function expectCompiles(source: string, includes: string[], flags: string[] = []): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-header-'));
  const src = path.join(dir, 'check.cc');
  fs.writeFileSync(src, source);
  const native = path.join(__dirname, '..', 'native');
  const r = spawnSync('c++', ['-std=c++17', '-fsyntax-only', ...flags, `-I${native}`, ...includes.map((d) => `-I${d}`), src],
    { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}
