// File helpers: every file is written to a temporary name in the same folder and renamed, so a crash or a
// kill never leaves a half-written file under the real name.
import * as fs from 'node:fs';
import * as path from 'node:path';

export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempName(file);
  const fd = fs.openSync(tmp, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Writes a folder atomically: build(tmpDir) fills a temporary folder, which is then renamed to dir. */
export function writeDirAtomic(dir: string, build: (tmpDir: string) => void): void {
  const tmp = tempName(dir);
  fs.mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** A JSON object from a file, with errors that name the file. */
export function readJsonObject(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: expected a JSON object`);
  return raw as Record<string, unknown>;
}
