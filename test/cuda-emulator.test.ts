// The CUDA emulator's own checks (native/cuda/emu/test/check.sh), run from jest: builds its self-test and a
// deliberately racy kernel with g++, plain and with ThreadSanitizer (~20 s on 2 cores), then requires
//   - the self-test (shuffles, votes, barriers, atomics, shared memory, deadlock report) to pass under forward,
//     reverse and random fiber orders, and under TSan with no report;
//   - the missing __syncthreads to give wrong results under some order, and to be reported by TSan with the
//     source lines of the write and the read;
//   - every production kernel (native/cuda/kernels/) to run under TSan without a report.
// The binaries are kept in build/cuemu-check and rebuilt only when something under native/cuda or native/include
// changes (~40 s of CPU for a full rebuild, a few seconds otherwise).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const script = path.join(__dirname, '..', 'native', 'cuda', 'emu', 'test', 'check.sh');
test(
  'emulator self-test under three schedules and ThreadSanitizer; the racy kernel is caught; kernels are race-free',
  () => {
    const out = path.join(__dirname, '..', 'build', 'cuemu-check');
    const r = spawnSync('bash', [script, out], { encoding: 'utf8' });
    const report = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0) throw new Error(`check.sh failed (exit ${r.status}):\n${report}`);
    expect(report).toMatch(/ThreadSanitizer reports the racy kernel/);
    expect(report).toMatch(/every kernel of native\/cuda\/kernels\/ once under ThreadSanitizer: no reports/);
    expect(report).toMatch(/cuemu check: \d+ passed, 0 failed/);
  },
  300_000,
);
