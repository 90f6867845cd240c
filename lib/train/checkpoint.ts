// Training checkpoints: <out>/step-N/ holds the model folder (config.json, model.safetensors, tokenizer files),
// trainer.msgpack (optimizer moments, step, epoch, data cursor, schedule, world size; no RNG state is needed:
// the data order derives from (seed, epoch) and training draws no random numbers) and
// manifest.json (sha256 of every file). The folder is built under a temporary name and renamed, so a kill at
// any moment leaves the previous complete checkpoint intact. Older checkpoints beyond --keep are removed.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Packr } from 'msgpackr';
import { saveModelFolder } from '../io/model-folder';
import { MiniMind } from '../nn/model';
import { writeDirAtomic, writeFileAtomic } from '../util/fsutil';
import type { Schedule } from './schedule';

const packr = new Packr({ moreTypes: true });

export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  epoch: number;
  /** The data loader's resumable position. */
  cursor: unknown;
  optimizer: { step: number; m: Float32Array[]; v: Float32Array[] };
  schedule: Schedule;
  worldSize: number;
  stage: string;
  args: Record<string, unknown>;
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

export function checkpointDir(out: string, step: number): string {
  return path.join(out, `step-${step}`);
}

export function saveCheckpoint(out: string, model: MiniMind, state: TrainerState, tokenizerDir: string | null,
  keep: number, extraFiles: (dir: string) => void = () => {}): string {
  const dir = checkpointDir(out, state.step);
  writeDirAtomic(dir, (tmp) => {
    saveModelFolder(model, tmp, tokenizerDir);
    extraFiles(tmp);
    writeFileAtomic(path.join(tmp, 'trainer.msgpack'), packr.pack(state));
    const files = fs.readdirSync(tmp).filter((f) => f !== 'manifest.json').sort();
    const manifest = Object.fromEntries(files.map((f) => [f, sha256(path.join(tmp, f))]));
    writeFileAtomic(path.join(tmp, 'manifest.json'), JSON.stringify({ step: state.step, files: manifest }, null, 2));
  });
  if (keep > 0) {
    for (const old of listCheckpoints(out).slice(0, -keep)) fs.rmSync(old.dir, { recursive: true, force: true });
  }
  return dir;
}

/** Complete checkpoints (manifest present, every checksum right), oldest first. */
export function listCheckpoints(out: string): { step: number; dir: string }[] {
  if (!fs.existsSync(out)) return [];
  return fs.readdirSync(out)
    .map((name) => ({ name, m: /^step-(\d+)$/.exec(name) }))
    .filter((e) => e.m)
    .map((e) => ({ step: Number(e.m![1]), dir: path.join(out, e.name) }))
    .filter((c) => isComplete(c.dir))
    .sort((a, b) => a.step - b.step);
}

export function isComplete(dir: string): boolean {
  const manifestFile = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestFile)) return false;
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Record<string, string> };
    return Object.entries(manifest.files).every(([f, hash]) => fs.existsSync(path.join(dir, f)) && sha256(path.join(dir, f)) === hash);
  } catch {
    return false;
  }
}

/** The newest complete checkpoint under `out` (or `out` itself when it is a checkpoint folder). */
export function latestCheckpoint(out: string): string | null {
  if (isComplete(out) && fs.existsSync(path.join(out, 'trainer.msgpack'))) return out;
  const all = listCheckpoints(out);
  return all.length ? all[all.length - 1].dir : null;
}

export function readTrainerState(dir: string): TrainerState {
  return packr.unpack(fs.readFileSync(path.join(dir, 'trainer.msgpack'))) as TrainerState;
}
