// Starts rank processes for the distributed tests: each runs test/dist/worker.ts (TypeScript, through
// scripts/register-ts.js) with torchrun's variables for a run on 127.0.0.1, and resolves with its exit and output.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from '../../lib/dist/launch';

export const WORKER = path.join(__dirname, 'worker.ts');
export const NODE_ARGS = ['-r', path.join(__dirname, '..', '..', 'scripts', 'register-ts.js')];

export interface RankExit {
  rank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs `world` ranks of worker.ts in `mode` (or a single process when world is 1, without WORLD_SIZE). */
export async function spawnRanks(world: number, mode: string, extraEnv: NodeJS.ProcessEnv = {},
  limitSeconds = 45): Promise<RankExit[]> {
  const port = await freePort();
  const start = Date.now();
  return Promise.all(Array.from({ length: world }, (_, rank) => new Promise<RankExit>((resolve) => {
    const distEnv = world > 1 ? { RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world),
      LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) } : {};
    const child = spawn(process.execPath, [...NODE_ARGS, WORKER, mode], {
      env: { ...process.env, MINIMIND_THREADS: '1', ...distEnv, ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // A hung rank must not outlive the test: after `limitSeconds` it is killed (and the test sees SIGKILL).
    const limit = setTimeout(() => child.kill('SIGKILL'), limitSeconds * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      resolve({ rank, pid: child.pid!, code, signal, stdout, stderr, seconds: (Date.now() - start) / 1000 });
    });
  })));
}
