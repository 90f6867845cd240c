// The launcher (lib/dist/launch.ts) with real child processes: torchrun's variables, rank-prefixed
// line-buffered output, and one failed rank stopping the others; then the CLI end to end.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { launch } from '../lib/dist/launch';
import { NODE_ARGS, WORKER } from './dist/spawn';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  return { stream, text: () => text };
}

const CLI = path.join(__dirname, '..', 'bin', 'cli.ts');
// The CLI end-to-end test needs every command's modules; on a checkout where some are still missing, say so.
const cliProbe = spawnSync(process.execPath, [...NODE_ARGS, CLI, '--help'], { encoding: 'utf8', timeout: 60_000 });
const cliMissing = cliProbe.status === 0 ? '' : (/Cannot find module '[^']+'/.exec(cliProbe.stderr)?.[0] ?? 'it fails to start');

const base = { nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: null, graceSeconds: 2 };

describe('launch', () => {
  test('starts N ranks with torchrun variables and prefixes their lines by rank', async () => {
    const out = capture();
    const err = capture();
    const code = await launch({ ...base, nprocPerNode: 2, command: [process.execPath, ...NODE_ARGS, WORKER, 'env'],
      env: { ...process.env, MINIMIND_THREADS: '' }, stdout: out.stream, stderr: err.stream });
    expect(code).toBe(0);
    const lines = out.text().split('\n').filter(Boolean);
    for (const rank of [0, 1]) {
      const mine = lines.filter((l) => l.startsWith(`[rank ${rank}] `)).map((l) => l.slice(`[rank ${rank}] `.length));
      expect(mine).toHaveLength(2);
      const env = JSON.parse(mine[0]) as Record<string, string>;
      expect(env).toMatchObject({ RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2',
        MASTER_ADDR: '127.0.0.1' });
      expect(Number(env.MASTER_PORT)).toBeGreaterThan(0);
      expect(env.MINIMIND_THREADS).toBe(String(Math.max(1, Math.floor(os.cpus().length / 2)))); // cores shared out
      expect(mine[1]).toBe('no newline at the end'); // a last partial line is flushed, still prefixed
    }
    expect(err.text()).toMatch(/^\[launch\] starting 2 rank\(s\) of 2/);
  });

  test('node rank and node count set global ranks', async () => {
    const out = capture();
    const code = await launch({ ...base, nnodes: 3, nodeRank: 2, masterPort: 1, nprocPerNode: 2,
      command: [process.execPath, ...NODE_ARGS, WORKER, 'env'], stdout: out.stream, stderr: capture().stream });
    expect(code).toBe(0);
    const envs = out.text().split('\n').filter((l) => l.includes('{')).map((l) => JSON.parse(l.replace(/^\[rank \d\] /, '')));
    expect(envs.map((e) => [e.RANK, e.LOCAL_RANK, e.WORLD_SIZE]).sort()).toEqual([['4', '0', '6'], ['5', '1', '6']]);
  });

  test('a failing rank stops the others and the launcher exits with its code', async () => {
    const err = capture();
    const started = Date.now();
    const code = await launch({ ...base, nprocPerNode: 3, command: [process.execPath, ...NODE_ARGS, WORKER, 'env'],
      env: { ...process.env, FAIL_RANK: '1' }, stdout: capture().stream, stderr: err.stream });
    expect(code).toBe(3);
    expect(err.text()).toMatch(/\[launch\] rank 1 exited with code 3; stopping the other ranks/);
    expect(Date.now() - started).toBeLessThan(20_000); // the others sleep 60 s unless stopped
  });

  test('bad options are refused', async () => {
    await expect(launch({ ...base, nprocPerNode: 0, command: ['x'] })).rejects.toThrow(/--nproc-per-node must be/);
    await expect(launch({ ...base, nnodes: 2, nprocPerNode: 1, command: ['x'] })).rejects.toThrow(/--master-port/);
  });

  test('CLI: `launch --nproc-per-node 2 -- info` runs the CLI as two ranks', () => {
    if (cliMissing) throw new Error(`the CLI does not load: ${cliMissing}`);
    const r = spawnSync(process.execPath, [...NODE_ARGS, CLI, 'launch', '--nproc-per-node', '2', '--', 'info', '--json'],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    for (const rank of [0, 1]) expect(r.stdout).toContain(`[rank ${rank}] {`);
    const missing = spawnSync(process.execPath, [...NODE_ARGS, CLI, 'launch', '--nproc-per-node', '2'], { encoding: 'utf8' });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/give the command to run after --/);
  });
});
