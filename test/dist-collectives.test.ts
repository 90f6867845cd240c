// The CPU backend's collectives between real processes on 127.0.0.1: shared memory (2 ranks) and the TCP ring
// (3 ranks), against a float64 reference; every rank must get the same bits. Then failures: a killed rank
// and a stalled rank make the others exit non-zero within the (short) timeout; nccl says why it can't run.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initDistributed } from '../lib/dist';
import { freePort } from '../lib/dist/launch';
import { rankData, SIZES } from './dist/data';
import { spawnRanks } from './dist/spawn';

function checkCollectives(world: number, transport: string, outDir: string, exits: Awaited<ReturnType<typeof spawnRanks>>) {
  for (const e of exits) expect({ rank: e.rank, code: e.code, stderr: e.stderr }).toEqual({ rank: e.rank, code: 0, stderr: '' });
  const files = exits.map((e) => fs.readFileSync(path.join(outDir, `collectives-rank${e.rank}.bin`)));
  for (const f of files.slice(1)) expect(f.equals(files[0])).toBe(true); // bit-identical on every rank
  const got = new Float32Array(files[0].buffer, files[0].byteOffset, files[0].length / 4);
  // Bucketed buffers, then the single buffer (same data as the last bucketed one), then the started ones.
  const order = [...SIZES.keys(), SIZES.length - 1, ...SIZES.keys()];
  // (Not the bucketed call's bits: a ring sums each element starting from the rank that owns its chunk.)
  let offset = 0;
  let worst = 0;
  for (const i of order) {
    const inputs = Array.from({ length: world }, (_, r) => rankData(r, i));
    for (let k = 0; k < SIZES[i]; k++) {
      let mean = 0;
      for (const a of inputs) mean += a[k];
      mean /= world;
      worst = Math.max(worst, Math.abs(got[offset + k] - mean));
    }
    offset += SIZES[i];
  }
  expect(offset).toBe(got.length);
  expect(worst).toBeLessThan(1e-6);
  for (const e of exits) {
    const summary = JSON.parse(e.stdout.trim().split('\n').pop()!) as { transport: string; ints: number[]; numbers: number[] };
    expect(summary.transport).toBe(transport);
    expect(summary.ints).toEqual([1, 10, -1]); // broadcast from rank 1
    expect(summary.numbers).toEqual([(world - 1) / 2, 1.5]);
  }
}

describe('cpu collectives between processes', () => {
  let outDir: string;
  beforeAll(() => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-dist-'));
  });
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  test('shm, 2 ranks: mean of odd-sized and multi-chunk buffers, bit-identical on both ranks', async () => {
    const exits = await spawnRanks(2, 'collectives', { OUT_DIR: outDir, MINIMIND_DIST_TRANSPORT: 'shm' });
    checkCollectives(2, 'shm', outDir, exits);
    // Rank 0 unlinked the segment once both ranks had mapped it: nothing is left behind in /dev/shm.
    expect(fs.readdirSync('/dev/shm').filter((f) => f.startsWith(`minimind-${exits[0].pid}-`))).toEqual([]);
  });

  test('tcp ring, 3 ranks: mean correct, bit-identical on every rank', async () => {
    const exits = await spawnRanks(3, 'collectives', { OUT_DIR: outDir, MINIMIND_DIST_TRANSPORT: 'tcp' });
    checkCollectives(3, 'tcp', outDir, exits);
  });

  for (const transport of ['shm', 'tcp']) {
    test(`${transport}: a killed rank makes the other exit non-zero, well within the timeout`, async () => {
      const exits = await spawnRanks(2, 'die', { MINIMIND_DIST_TRANSPORT: transport, MINIMIND_DIST_TIMEOUT: '20' });
      expect(exits[1].signal).toBe('SIGKILL');
      expect(exits[0].code).toBe(1);
      expect(exits[0].stderr).toMatch(/rank 0: all_reduce: .*(rank 1 .*exited|rank 1 closed the connection|failed)/);
      expect(exits[0].seconds).toBeLessThan(15);
    });

    test(`${transport}: a rank that stops calling collectives times the others out`, async () => {
      const exits = await spawnRanks(2, 'stall', { MINIMIND_DIST_TRANSPORT: transport, MINIMIND_DIST_TIMEOUT: '1.5',
        STALL_MS: '4000' });
      expect(exits[0].code).toBe(1);
      expect(exits[0].stderr).toMatch(/timed out \(MINIMIND_DIST_TIMEOUT=1\.5\d* s\) waiting for rank/);
      expect(exits[1].code).toBe(1); // it comes back to an aborted run and fails too
    });
  }

  test('ranks with different training arguments are refused at rendezvous', async () => {
    const port = String(await freePort());
    const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port });
    const results = await Promise.allSettled([
      initDistributed({ env: env(0), config: { lr: 1e-3, batch: 8 }, rendezvousTimeout: 10 }),
      initDistributed({ env: env(1), config: { lr: 2e-3, batch: 8 }, rendezvousTimeout: 10 }),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/rank 1 runs different training arguments than rank 0 \(lr\)/);
    }
  });

  test('--backend nccl fails with a clear message when NCCL or a CUDA device is missing', async () => {
    const env = { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) };
    await expect(initDistributed({ env, backend: 'nccl' })).rejects.toThrow(
      /--backend nccl: (this build has no CUDA backend|no CUDA device|cannot load libnccl\.so\.2)/);
  });

  test('WORLD_SIZE unset or 1 means no distributed run', async () => {
    expect(await initDistributed({ env: {} })).toBeNull();
    expect(await initDistributed({ env: { WORLD_SIZE: '1', RANK: '0' } })).toBeNull();
    await expect(initDistributed({ env: { WORLD_SIZE: '2', RANK: '2' } })).rejects.toThrow(/RANK=2 must be below WORLD_SIZE=2/);
  });
});
