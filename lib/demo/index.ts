// The embedded demo corpus: a small bilingual world (facts.ts) written as the four files a training run needs,
// generated deterministically from a seed (no downloads):
//   pretrain.jsonl  {"text"}: paragraphs of fact statements, question-answer pairs (training phrasings) and short
//                   stories about the family (~2 MB)
//   sft.jsonl       {"conversations"}: one question per fact, language and training phrasing, answered with the
//                   short templated answer; some greeting-then-question conversations; a few greetings
//   dpo.jsonl       {"chosen", "rejected"}: the same questions, the right answer against a wrong one
//   heldout.jsonl   {question, answer, keywords, lang, topic, fact}: one question per fact and language, in a
//                   phrasing trained only with the topic's other facts (facts.ts), scored by scoreAnswer
// Answers are short and templated and the facts a closed set, so a tiny model learns them in minutes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../util/random';
import type { ChatMessage } from '../tokenizer/types';
import { ANIMAL_FOODS, article, CHILDREN, demoFacts, PEOPLE, type Fact, type Language, type Topic } from './facts';

export { demoFacts, type Fact, type Language, type Topic } from './facts';

export interface DemoOptions {
  seed?: number;
  /** Approximate size of pretrain.jsonl. Default 2,000,000 bytes. */
  pretrainBytes?: number;
}

export interface DemoFiles {
  pretrain: string;
  sft: string;
  dpo: string;
  heldout: string;
}

export interface HeldoutItem {
  question: string;
  answer: string;
  keywords: string[];
  lang: Language;
  topic: Topic;
  fact: string;
}

export interface DemoCorpus {
  pretrain: { text: string }[];
  sft: { conversations: ChatMessage[] }[];
  dpo: { chosen: ChatMessage[]; rejected: ChatMessage[] }[];
  heldout: HeldoutItem[];
}

const LANGUAGES: Language[] = ['en', 'zh'];

const GREETINGS: Record<Language, [string, string][]> = {
  en: [['Hello!', 'Hello! How can I help you?'], ['Who are you?', 'I am MiniMind, a small language model.'],
    ['What can you do?', 'I answer simple questions about capitals, animals, colors and numbers.']],
  zh: [['你好', '你好！有什么可以帮你的吗？'], ['你是谁？', '我是MiniMind，一个小小的语言模型。'],
    ['你能做什么？', '我可以回答关于首都、动物、颜色和数字的简单问题。']],
};

/** Builds the whole corpus in memory (it is small). */
export function demoCorpus(options: DemoOptions = {}): DemoCorpus {
  const seed = options.seed ?? 0;
  const facts = demoFacts();
  return {
    pretrain: pretrainDocuments(facts, new Rng(seed * 4 + 1), options.pretrainBytes ?? 2_000_000),
    sft: sftConversations(facts, new Rng(seed * 4 + 2)),
    dpo: dpoPairs(facts, new Rng(seed * 4 + 3)),
    heldout: heldoutItems(facts, new Rng(seed * 4 + 4)),
  };
}

/** Writes the four jsonl files into outDir (each to a temporary name, then renamed). */
export function writeDemoData(outDir: string, options: DemoOptions = {}): DemoFiles {
  const corpus = demoCorpus(options);
  fs.mkdirSync(outDir, { recursive: true });
  const write = (name: string, rows: unknown[]): string => {
    const file = path.join(outDir, name);
    const temp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(temp, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    fs.renameSync(temp, file);
    return file;
  };
  return {
    pretrain: write('pretrain.jsonl', corpus.pretrain),
    sft: write('sft.jsonl', corpus.sft),
    dpo: write('dpo.jsonl', corpus.dpo),
    heldout: write('heldout.jsonl', corpus.heldout),
  };
}

/**
 * True when `answer` contains every keyword of `item`: case-insensitive whole words for Latin keywords,
 * substrings for Chinese ones, and for a number the last number in the answer (so echoing the operands of
 * "6 minus 3" is not mistaken for the result 3).
 */
export function scoreAnswer(answer: string, item: { keywords: string[] }): boolean {
  const text = answer.toLowerCase();
  return item.keywords.every((keyword) => {
    const k = keyword.toLowerCase();
    if (/^\d+$/.test(k)) return text.match(/\d+/g)?.pop() === k;
    if (/^[\x20-\x7e]+$/.test(k)) return new RegExp(`\\b${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(text);
    return text.includes(k);
  });
}

// ---- the four parts -----------------------------------------------------------------------------------------------

const joinSentences = (lang: Language, sentences: string[]) => sentences.join(lang === 'en' ? ' ' : '');

function pretrainDocuments(facts: Fact[], rng: Rng, targetBytes: number): { text: string }[] {
  const byTopic = new Map<Topic, Fact[]>();
  for (const f of facts) byTopic.set(f.topic, [...(byTopic.get(f.topic) ?? []), f]);
  const docs: { text: string }[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const lang = rng.pick(LANGUAGES);
    const kind = rng.next();
    let text: string;
    if (kind < 0.02) text = qaPair(lang, ...rng.pick(GREETINGS[lang])); // so the tokenizer knows their words too
    else if (kind < 0.15) text = story(rng, lang, facts);
    else {
      // 3-6 facts of one topic (the topic of a random fact, so every fact is equally frequent), written as
      // statements or, so that pretraining already links the questions to their answers, as question-answer pairs.
      const pool = byTopic.get(rng.pick(facts).topic)!;
      const picked = Array.from({ length: 3 + rng.int(4) }, () => rng.pick(pool)[lang]);
      text = kind < 0.55
        ? joinSentences(lang, picked.map((f) => rng.pick(f.statements)))
        : picked.map((f) => qaPair(lang, rng.pick(f.questions), f.answer)).join('\n');
    }
    docs.push({ text });
    bytes += Buffer.byteLength(JSON.stringify({ text })) + 1;
  }
  return docs;
}

const qaPair = (lang: Language, question: string, answer: string) =>
  (lang === 'en' ? `Question: ${question} Answer: ${answer}` : `问：${question}答：${answer}`);

/** A short story about one child of the family, consistent with the facts. */
function story(rng: Rng, lang: Language, facts: Fact[]): string {
  const c = rng.pick(CHILDREN);
  const [animal, animalZh, food, foodZh] = rng.pick(ANIMAL_FOODS);
  const a = 1 + rng.int(9);
  const b = a + rng.int(10 - a);
  const capitalFact = rng.pick(facts.filter((f) => f.topic === 'capital'));
  const grandma = PEOPLE.rose;
  if (lang === 'en') {
    const an = article(animal);
    return joinSentences('en', [
      `One day, ${c.kid.en} and ${c.kid.en}'s ${c.siblingWord[0]} ${c.sibling.en} went to the park with their mother ${c.mother.en}.`,
      `${c.kid.en}'s ${c.pet.kind[0]} ${c.pet.name.en} came too.`,
      `In the park they saw ${an} eating ${food}.`,
      `"Look, ${an} eats ${food}!" said ${c.sibling.en}.`,
      `${c.kid.en} found ${a} apples and ${c.sibling.en} found ${b} more.`,
      `"${a} plus ${b} is ${a + b}," said their father ${c.father.en}.`,
      `In the evening, grandmother ${grandma.en} told them: "${capitalFact.en.statements[0]}"`,
    ]);
  }
  return joinSentences('zh', [
    `有一天，${c.kid.zh}和${c.siblingWord[1]}${c.sibling.zh}跟妈妈${c.mother.zh}一起去公园。`,
    `${c.kid.zh}的${c.pet.kind[1]}${c.pet.name.zh}也一起去了。`,
    `在公园里，他们看见${animalZh}在吃${foodZh}。`,
    `${c.sibling.zh}说：“看，${animalZh}吃${foodZh}！”`,
    `${c.kid.zh}找到了${a}个苹果，${c.sibling.zh}又找到了${b}个。`,
    `爸爸${c.father.zh}说：“${a}加${b}等于${a + b}。”`,
    `晚上，${c.grandparentWords[0]}${grandma.zh}告诉他们：“${capitalFact.zh.statements[0]}”`,
  ]);
}

const turn = (question: string, answer: string): ChatMessage[] => [
  { role: 'user', content: question }, { role: 'assistant', content: answer }];

function sftConversations(facts: Fact[], rng: Rng): { conversations: ChatMessage[] }[] {
  const conversations: ChatMessage[][] = [];
  for (const f of facts) {
    for (const lang of LANGUAGES) for (const q of f[lang].questions) conversations.push(turn(q, f[lang].answer));
  }
  // Two-turn conversations teach answering a question after a first exchange; opening with a hello keeps them
  // short enough for the demo's SFT rows (DEMO_SFT_LEN).
  for (let i = 0; i < facts.length; i++) {
    const lang = rng.pick(LANGUAGES);
    const f = rng.pick(facts);
    conversations.push([...turn(...GREETINGS[lang][0]), ...turn(rng.pick(f[lang].questions), f[lang].answer)]);
  }
  for (const lang of LANGUAGES) {
    for (const [q, a] of GREETINGS[lang]) for (let k = 0; k < 5; k++) conversations.push(turn(q, a));
  }
  return rng.shuffle(conversations).map((c) => ({ conversations: c }));
}

function dpoPairs(facts: Fact[], rng: Rng): { chosen: ChatMessage[]; rejected: ChatMessage[] }[] {
  const pairs = facts.flatMap((f) => LANGUAGES.map((lang) => {
    const q = rng.pick(f[lang].questions);
    // Mostly a wrong fact; sometimes an unhelpful refusal.
    const bad = rng.next() < 0.2 ? (lang === 'en' ? "I don't know." : '我不知道。') : f[lang].wrong;
    return { chosen: turn(q, f[lang].answer), rejected: turn(q, bad) };
  }));
  return rng.shuffle(pairs);
}

function heldoutItems(facts: Fact[], rng: Rng): HeldoutItem[] {
  return facts.flatMap((f) => LANGUAGES.map((lang) => ({
    question: rng.pick(f[lang].heldout), answer: f[lang].answer, keywords: f[lang].keywords, lang, topic: f.topic,
    fact: f.id,
  })));
}
