// C-Eval multiple choice, MiniMind's way (eval_ceval.py): for each question
//   prompt   = "{question}。选择 A: {A}, B: {B}, C: {C}, D: {D}"
//   messages = [system "开始回答问题", user prompt], rendered with the chat template (generation prompt on)
//   the answer is the letter whose token has the highest probability at the last position (the last
//   max_seq_len tokens are kept); ties go to the earlier letter.
// Results per subject go to <subject>_val_result.csv (question,A,B,C,D,answer,llm_answer,is_right, with a last
// row holding the accuracy), and test.log holds the totals, as upstream writes them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad } from '../autograd/tape';
import { splitCsv } from '../data/records';
import { RecordStream } from '../data/source';
import { MiniMind } from '../nn/model';
import { resetStepArenas } from '../tensor/memory';
import { Tensor } from '../tensor/tensor';
import type { TextTokenizer } from '../tokenizer/types';
import { writeFileAtomic } from '../util/fsutil';

const LETTERS = ['A', 'B', 'C', 'D'] as const;

export interface CevalQuestion {
  id: string;
  question: string;
  options: Record<(typeof LETTERS)[number], string>;
  answer: string;
}

export interface SubjectResult {
  subject: string;
  correct: number;
  total: number;
  accuracy: number;
}

export interface CevalReport {
  subjects: SubjectResult[];
  correct: number;
  total: number;
  accuracy: number;
}

export async function readCevalCsv(file: string): Promise<CevalQuestion[]> {
  const stream = new RecordStream(file, 'csv');
  const out: CevalQuestion[] = [];
  for await (const group of stream.groups()) {
    const columns = stream.columns!;
    const col = (name: string) => {
      const i = columns.indexOf(name);
      if (i < 0) throw new Error(`${file}: no "${name}" column (columns: ${columns.join(',')})`);
      return i;
    };
    const idx = { id: col('id'), question: col('question'), A: col('A'), B: col('B'), C: col('C'), D: col('D'), answer: col('answer') };
    for (const rec of group) {
      const cells = splitCsv(rec.text);
      if (cells.length !== columns.length) throw new Error(`${file}:${rec.line}: ${cells.length} cells, expected ${columns.length}`);
      out.push({
        id: cells[idx.id],
        question: cells[idx.question],
        options: { A: cells[idx.A], B: cells[idx.B], C: cells[idx.C], D: cells[idx.D] },
        answer: cells[idx.answer].trim(),
      });
    }
  }
  return out;
}

export function cevalPrompt(q: CevalQuestion): string {
  return `${q.question}。选择 A: ${q.options.A}, B: ${q.options.B}, C: ${q.options.C}, D: ${q.options.D}`;
}

/** The letter the model prefers for one question. */
export function answerQuestion(model: MiniMind, tokenizer: TextTokenizer, q: CevalQuestion, letterIds: number[]): string {
  const text = tokenizer.applyChatTemplate([{ role: 'system', content: '开始回答问题' }, { role: 'user', content: cevalPrompt(q) }], true);
  let ids = tokenizer.encode(text);
  if (ids.length > model.cfg.max_seq_len) ids = ids.slice(ids.length - model.cfg.max_seq_len);
  const logits = noGrad(() => model.forward(Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32'), { lastOnly: true }).toArray());
  resetStepArenas();
  let best = 0;
  for (let i = 1; i < 4; i++) if (logits[letterIds[i]] > logits[letterIds[best]]) best = i; // softmax is monotonic
  return LETTERS[best];
}

const csvCell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export async function evalCeval(model: MiniMind, tokenizer: TextTokenizer, dataDir: string, outDir: string | null,
  onProgress?: (subject: string, done: number, total: number) => void): Promise<CevalReport> {
  if (!fs.existsSync(dataDir)) throw new Error(`--data: no such folder ${dataDir}`);
  const files = fs.readdirSync(dataDir).filter((f) => f.endsWith('.csv')).sort();
  if (!files.length) throw new Error(`${dataDir}: no C-Eval .csv files`);
  const letterIds = LETTERS.map((l) => {
    const ids = tokenizer.encode(l);
    if (ids.length !== 1) throw new Error(`the tokenizer encodes "${l}" as ${ids.length} tokens; C-Eval needs one token per letter`);
    return ids[0];
  });
  const subjects: SubjectResult[] = [];
  const log: string[] = [];
  if (outDir) fs.mkdirSync(outDir, { recursive: true });
  for (const file of files) {
    const questions = await readCevalCsv(path.join(dataDir, file));
    const subject = file.replace(/(_val|_dev|_test)?\.csv$/, '');
    const rows = ['question,A,B,C,D,answer,llm_answer,is_right'];
    let correct = 0;
    questions.forEach((q, i) => {
      const guess = answerQuestion(model, tokenizer, q, letterIds);
      const right = guess === q.answer;
      if (right) correct++;
      rows.push([q.question, q.options.A, q.options.B, q.options.C, q.options.D, q.answer, guess, right ? '1' : '0'].map(csvCell).join(','));
      onProgress?.(subject, i + 1, questions.length);
    });
    const accuracy = questions.length ? correct / questions.length : 0;
    const line = `文件 ${file} 的正确率: ${(100 * accuracy).toFixed(2)}%`;
    rows.push(['-', '-', '-', '-', '-', line, '-', '-'].join(','));
    log.push(`${file}: ${line}`);
    if (outDir) writeFileAtomic(path.join(outDir, `${subject}_val_result.csv`), rows.join('\n') + '\n');
    subjects.push({ subject, correct, total: questions.length, accuracy });
  }
  const correct = subjects.reduce((s, r) => s + r.correct, 0);
  const total = subjects.reduce((s, r) => s + r.total, 0);
  const accuracy = total ? correct / total : 0;
  log.push('', `总题数: ${total}`, `总正确数: ${correct}`, `总正确率: ${(100 * accuracy).toFixed(2)}%`);
  if (outDir) writeFileAtomic(path.join(outDir, 'test.log'), log.join('\n') + '\n');
  return { subjects, correct, total, accuracy };
}
