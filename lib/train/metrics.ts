// Progress and metrics of a run: one JSON line per logged step in <out>/metrics.jsonl (always), and a
// progress bar with loss, lr, tokens/s and ETA when stderr is a terminal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';

export interface StepMetrics {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  tokens_per_s: number;
  grad_norm: number;
  elapsed_s: number;
  [key: string]: number;
}

export class RunLogger {
  private bar: SingleBar | null = null;
  private readonly file: string;

  constructor(out: string, private readonly totalSteps: number, startStep: number, private readonly quiet = false) {
    fs.mkdirSync(out, { recursive: true });
    this.file = path.join(out, 'metrics.jsonl');
    // On resume, drop lines past the checkpoint so the file describes one continuous run.
    if (fs.existsSync(this.file)) {
      const kept = fs.readFileSync(this.file, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as StepMetrics).step <= startStep);
      fs.writeFileSync(this.file, kept.map((l) => l + '\n').join(''));
    }
    if (process.stderr.isTTY && !quiet) {
      this.bar = new SingleBar({
        format: 'step {value}/{total} |{bar}| loss {loss} lr {lr} {tps} tok/s ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 20,
      });
      this.bar.start(totalSteps, startStep, { loss: '-', lr: '-', tps: '-' });
    }
  }

  log(m: StepMetrics, writeLine: boolean): void {
    if (writeLine) fs.appendFileSync(this.file, JSON.stringify(m) + '\n');
    if (this.bar) {
      this.bar.update(m.step, { loss: m.loss.toFixed(4), lr: m.lr.toExponential(2), tps: m.tokens_per_s.toFixed(0) });
    } else if (writeLine && !this.quiet) {
      console.error(`step ${m.step}/${this.totalSteps} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ` +
        `${m.tokens_per_s.toFixed(0)} tok/s`);
    }
  }

  message(text: string): void {
    if (this.quiet) return;
    if (this.bar) this.bar.stop();
    console.error(text);
    if (this.bar) this.bar.start(this.totalSteps, (this.bar as unknown as { value: number }).value ?? 0);
  }

  close(): void {
    this.bar?.stop();
  }
}
