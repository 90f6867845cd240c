// The launcher behind `minimind-native launch`: starts this node's ranks as child processes with torchrun's
// environment, prefixes their output by rank, and stops everything when one rank fails.
//
// Rank numbering: node R of M nodes with N processes each runs global ranks R*N .. R*N+N-1; every child gets
//   RANK, LOCAL_RANK, WORLD_SIZE (= M*N), LOCAL_WORLD_SIZE (= N), MASTER_ADDR, MASTER_PORT,
// and MINIMIND_THREADS = cores / N unless set (N ranks each using every core would oversubscribe the CPU).
// Nodes do not talk to each other here: the ranks meet at rank 0's store (lib/dist/index.ts), like torchrun's
// static rendezvous. Output: each line of a child's stdout/stderr is written as "[rank R] line" to ours.
// Failure: the first rank to exit non-zero (or by a signal) is reported; the others get SIGTERM, then SIGKILL
// after a grace period, and the launcher exits with the failed rank's code. SIGINT/SIGTERM sent to the
// launcher are forwarded to every rank (the trainer saves a checkpoint on SIGINT).
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as readline from 'node:readline';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  /** null: a free port (single node only). */
  masterPort: number | null;
  /** The program and arguments every rank runs. */
  command: string[];
  /** The environment the ranks inherit (default process.env). */
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Seconds between SIGTERM and SIGKILL when stopping the ranks after a failure. */
  graceSeconds?: number;
  /** Forward SIGINT/SIGTERM received by this process to the ranks (the CLI does; tests don't). */
  forwardSignals?: boolean;
}

/** A TCP port nothing listens on right now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function validate(o: LaunchOptions): void {
  const whole = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`launch: ${name} must be a whole number >= ${min}, got ${v}`);
  };
  whole('--nproc-per-node', o.nprocPerNode, 1);
  whole('--nnodes', o.nnodes, 1);
  whole('--node-rank', o.nodeRank, 0);
  if (o.nodeRank >= o.nnodes) throw new Error(`launch: --node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  if (o.masterPort === null && o.nnodes > 1) {
    throw new Error('launch: with --nnodes > 1 every node needs the same --master-addr and --master-port');
  }
  if (o.command.length === 0) throw new Error('launch: nothing to run (give the command after --)');
}

/** Copies a child's output stream line by line, each line prefixed. */
function pipeLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string): Promise<void> {
  return new Promise((resolve) => {
    const lines = readline.createInterface({ input: from, crlfDelay: Infinity });
    lines.on('line', (line) => to.write(`${prefix}${line}\n`));
    lines.on('close', resolve);
  });
}

/** Runs the ranks to completion; resolves to the exit code the launcher should exit with. */
export async function launch(o: LaunchOptions): Promise<number> {
  validate(o);
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const baseEnv = o.env ?? process.env;
  const masterPort = o.masterPort ?? (await freePort(o.masterAddr));
  const worldSize = o.nnodes * o.nprocPerNode;
  const threads = baseEnv.MINIMIND_THREADS || String(Math.max(1, Math.floor(os.cpus().length / o.nprocPerNode)));
  const say = (text: string) => stderr.write(`[launch] ${text}\n`);
  say(`starting ${o.nprocPerNode} rank(s) of ${worldSize} (node ${o.nodeRank} of ${o.nnodes}), ` +
    `master ${o.masterAddr}:${masterPort}, ${threads} thread(s) each`);

  const children: ChildProcess[] = [];
  const outputs: Promise<void>[] = [];
  let failure: { rank: number; code: number } | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const stopOthers = () => {
    for (const c of alive()) c.kill('SIGTERM');
    killTimer = setTimeout(() => alive().forEach((c) => c.kill('SIGKILL')), (o.graceSeconds ?? 10) * 1000);
  };

  const exits = [];
  for (let local = 0; local < o.nprocPerNode; local++) {
    const rank = o.nodeRank * o.nprocPerNode + local;
    const child = spawn(o.command[0], o.command.slice(1), {
      stdio: ['inherit', 'pipe', 'pipe'],
      env: {
        ...baseEnv,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(masterPort),
        MINIMIND_THREADS: threads,
      },
    });
    children.push(child);
    outputs.push(pipeLines(child.stdout!, stdout, `[rank ${rank}] `), pipeLines(child.stderr!, stderr, `[rank ${rank}] `));
    exits.push(new Promise<void>((resolve) => {
      child.on('error', (e) => {
        say(`rank ${rank} could not start: ${e.message}`);
        if (!failure) {
          failure = { rank, code: 1 };
          stopOthers();
        }
        resolve();
      });
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failure) {
          failure = { rank, code: code || 1 };
          say(`rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; stopping the other ranks`);
          stopOthers();
        }
        resolve();
      });
    }));
  }

  const forward = (signal: NodeJS.Signals) => () => {
    say(`${signal}: passing it to the ranks`);
    for (const c of alive()) c.kill(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  if (o.forwardSignals) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  }
  try {
    await Promise.all(exits);
    await Promise.all(outputs);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  const failed = failure as { rank: number; code: number } | null;
  if (failed) say(`failed: rank ${failed.rank} exited first (code ${failed.code})`);
  return failed ? failed.code : 0;
}
