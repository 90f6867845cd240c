// Starting worker threads (and processes) from this package's own modules. The compiled package starts `<base>.js`; when
// running from TypeScript sources (jest, `node -r scripts/register-ts.js`) only `<base>.ts` exists, so the
// thread first loads scripts/register-ts.js, which compiles .ts with swc (a dev dependency).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

/** `base` is a module path without extension, e.g. path.join(__dirname, 'worker'). */
export function startModuleWorker(base: string, workerData: unknown): Worker {
  if (fs.existsSync(`${base}.js`)) return new Worker(`${base}.js`, { workerData });
  const register = path.join(packageRootOf(base), 'scripts', 'register-ts.js');
  const bootstrap = `require(${JSON.stringify(register)}); require(${JSON.stringify(`${base}.ts`)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** Node's arguments to run a module file (`__filename`) as a child process, .ts sources included. */
export function moduleProcessArgs(file: string): string[] {
  if (!file.endsWith('.ts')) return [file];
  return ['-r', path.join(packageRootOf(file), 'scripts', 'register-ts.js'), file];
}

function packageRootOf(file: string): string {
  let dir = path.dirname(file);
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${file}`);
    dir = parent;
  }
  return dir;
}
