// The embedded demo corpus: deterministic per seed, well-formed for each stage, held-out questions unseen in
// training but answered by the SFT facts, and the keyword scorer.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { demoCorpus, demoFacts, scoreAnswer, writeDemoData, type DemoFiles, type HeldoutItem } from '../lib/demo';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function hashFiles(files: DemoFiles): string {
  const h = createHash('sha256');
  for (const f of [files.pretrain, files.sft, files.dpo, files.heldout]) h.update(fs.readFileSync(f));
  return h.digest('hex');
}

const readJsonl = <T>(file: string): T[] => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);

describe('demo corpus', () => {
  const small = { pretrainBytes: 200_000 };

  test('same seed gives the same bytes; another seed differs', () => {
    const a = hashFiles(writeDemoData(path.join(tmp, 'a'), { seed: 7, ...small }));
    const b = hashFiles(writeDemoData(path.join(tmp, 'b'), { seed: 7, ...small }));
    const c = hashFiles(writeDemoData(path.join(tmp, 'c'), { seed: 8, ...small }));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  test('a closed set of about 120 facts with unique ids', () => {
    const facts = demoFacts();
    expect(facts.length).toBeGreaterThanOrEqual(100);
    expect(facts.length).toBeLessThanOrEqual(140);
    expect(new Set(facts.map((f) => f.id)).size).toBe(facts.length);
  });

  test('files have the stage formats; default pretraining text is a few MB of English and Chinese', () => {
    const files = writeDemoData(path.join(tmp, 'full'), { seed: 1 });
    const pretrainBytes = fs.statSync(files.pretrain).size;
    expect(pretrainBytes).toBeGreaterThan(1_500_000);
    expect(pretrainBytes).toBeLessThan(4_000_000);
    const docs = readJsonl<{ text: string }>(files.pretrain);
    expect(docs.every((d) => typeof d.text === 'string' && d.text.length > 0)).toBe(true);
    expect(docs.some((d) => /[\u4e00-\u9fff]/.test(d.text))).toBe(true);
    expect(docs.some((d) => /^[\x20-\x7e]+$/.test(d.text))).toBe(true);
    for (const { conversations } of readJsonl<{ conversations: { role: string; content: string }[] }>(files.sft)) {
      expect(conversations.length % 2).toBe(0);
      conversations.forEach((m, i) => expect(m.role).toBe(i % 2 === 0 ? 'user' : 'assistant'));
    }
    for (const pair of readJsonl<{ chosen: { content: string }[]; rejected: { content: string }[] }>(files.dpo)) {
      expect(pair.chosen[0].content).toBe(pair.rejected[0].content);
      expect(pair.chosen[1].content).not.toBe(pair.rejected[1].content);
    }
  });

  test('held-out questions are new phrasings whose answers are SFT answers; the scorer accepts them', () => {
    const corpus = demoCorpus({ seed: 3, ...small });
    const questions = new Set<string>();
    const answers = new Set<string>();
    for (const { conversations } of corpus.sft) {
      conversations.forEach((m) => (m.role === 'user' ? questions : answers).add(m.content));
    }
    const pretrainText = corpus.pretrain.map((d) => d.text).join('\n');
    expect(corpus.heldout.length).toBe(2 * demoFacts().length);
    for (const item of corpus.heldout) {
      expect(questions.has(item.question)).toBe(false);
      expect(pretrainText.includes(item.question)).toBe(false);
      expect(answers.has(item.answer)).toBe(true);
      expect(scoreAnswer(item.answer, item)).toBe(true);
    }
    // Every DPO rejected answer fails the scorer for its fact (the pairs are right against wrong).
    const heldoutByAnswer = new Map(corpus.heldout.map((h) => [h.answer, h]));
    for (const pair of corpus.dpo) {
      const item = heldoutByAnswer.get(pair.chosen[1].content)!;
      expect(scoreAnswer(pair.rejected[1].content, item)).toBe(false);
    }
  });

  test('a held-out phrasing is trained with other facts of its topic (here: the capitals)', () => {
    const capitals = demoFacts().filter((f) => f.topic === 'capital');
    const country = (id: string) => id[8].toUpperCase() + id.slice(9);
    for (const f of capitals) {
      const others = capitals.filter((g) => g !== f);
      const trainedElsewhere = others.filter((g) =>
        g.en.questions.includes(f.en.heldout[0].replace(country(f.id), country(g.id))));
      expect(trainedElsewhere.length).toBeGreaterThan(others.length / 2);
    }
  });

  test('scoreAnswer: whole words, case, Chinese substrings, last number', () => {
    const item = (keywords: string[]): HeldoutItem =>
      ({ question: '', answer: '', keywords, lang: 'en', topic: 'capital', fact: '' });
    expect(scoreAnswer('The capital is LOTA.', item(['Lota']))).toBe(true);
    expect(scoreAnswer('The capital is Lotaria.', item(['Lota']))).toBe(false);
    expect(scoreAnswer('大熊猫吃竹子。', item(['竹子']))).toBe(true);
    expect(scoreAnswer('大熊猫吃草。', item(['竹子']))).toBe(false);
    expect(scoreAnswer('6 minus 3 is 3.', item(['3']))).toBe(true);
    expect(scoreAnswer('6 minus 3 is 9.', item(['3']))).toBe(false);
    expect(scoreAnswer('3加4等于17。', item(['7']))).toBe(false);
  });
});
