// Parsing one input record (a jsonl line, a CSV row, a text line or one element of a JSON array) into what a
// training stage needs: a pretraining document, an SFT conversation, or a DPO pair of conversations.
// Formats (minimind-reference.md §3 and §6.1):
//   pretrain  jsonl {"text": str} | v1 CSV with a `text` column | plain text, one document per line
//   sft       jsonl {"conversations": [{role, content}, ...]} (MiniMind2) | v1 CSV `history,q,a` (history is
//             Python's str() of a list of [q, a] pairs)
//   dpo       jsonl {"chosen": [messages], "rejected": [messages]} (MiniMind2) | v1 records
//             {"prompt": str, "chosen": str, "rejected": str} as jsonl or as one JSON array
// A bad record throws RecordError with a short reason; the caller adds file:line.
import type { ChatMessage } from '../tokenizer/types';

export type Stage = 'pretrain' | 'sft' | 'dpo';
export const STAGES: readonly Stage[] = ['pretrain', 'sft', 'dpo'];

export type InputFormat = 'jsonl' | 'csv' | 'text' | 'json-array';

/** One record as read from the file: its text and the (1-based) line it starts on. */
export interface RawRecord {
  line: number;
  text: string;
}

/**
 * How the loss mask of a conversation is built (samples.ts):
 * 'v1-last-answer'    MiniMind v1 SFTDataset: only the last assistant turn is trained;
 * 'assistant-turns'   MiniMind2 SFT/DPO datasets: every assistant turn is trained.
 */
export type MaskStyle = 'v1-last-answer' | 'assistant-turns';

export type ParsedRecord =
  | { kind: 'document'; text: string }
  | { kind: 'chat'; messages: ChatMessage[]; mask: MaskStyle }
  | { kind: 'pair'; chosen: ChatMessage[]; rejected: ChatMessage[] };

export class RecordError extends Error {}

/** Which input formats each stage reads. */
export const STAGE_FORMATS: Record<Stage, readonly InputFormat[]> = {
  pretrain: ['jsonl', 'csv', 'text'],
  sft: ['jsonl', 'csv'],
  dpo: ['jsonl', 'json-array'],
};

/**
 * Parses one record. `columns` is the CSV header (CSV only); `maxSeqLen` sets v1's history truncation
 * (each history message is cut to maxSeqLen/2 characters, as v1 SFTDataset does with max_length // 2).
 */
export function parseRecord(stage: Stage, format: InputFormat, text: string, columns: string[] | undefined,
  maxSeqLen: number): ParsedRecord {
  if (format === 'text') return { kind: 'document', text };
  if (format === 'csv') {
    const row = csvRow(text, columns ?? []);
    if (stage === 'pretrain') return { kind: 'document', text: requireCell(row, 'text') };
    return v1SftRecord(row, maxSeqLen);
  }
  const obj = parseJsonObject(text);
  if (stage === 'pretrain') return { kind: 'document', text: stringField(obj, 'text') };
  if (stage === 'sft') {
    return { kind: 'chat', messages: messageList(obj, 'conversations'), mask: 'assistant-turns' };
  }
  if (typeof obj.chosen === 'string' || typeof obj.prompt === 'string') {
    // v1 triple: the prompt becomes a user turn and each answer an assistant turn, so DPO trains on the same
    // chat layout the SFT model saw (v1 itself fed raw strings to TRL; see prepare.ts for why we template).
    const prompt = stringField(obj, 'prompt');
    const turn = (answer: string): ChatMessage[] => [{ role: 'user', content: prompt },
      { role: 'assistant', content: answer }];
    return { kind: 'pair', chosen: turn(stringField(obj, 'chosen')), rejected: turn(stringField(obj, 'rejected')) };
  }
  return { kind: 'pair', chosen: messageList(obj, 'chosen'), rejected: messageList(obj, 'rejected') };
}

function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new RecordError(`bad JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RecordError(`expected a JSON object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

function stringField(obj: Record<string, unknown>, field: string): string {
  if (!(field in obj)) throw new RecordError(`missing field '${field}'`);
  const value = obj[field];
  if (typeof value !== 'string') throw new RecordError(`field '${field}' is not a string (got ${typeName(value)})`);
  return value;
}

function messageList(obj: Record<string, unknown>, field: string): ChatMessage[] {
  if (!(field in obj)) throw new RecordError(`missing field '${field}'`);
  const list = obj[field];
  if (!Array.isArray(list)) throw new RecordError(`field '${field}' is not a list (got ${typeName(list)})`);
  if (list.length === 0) throw new RecordError(`field '${field}' is empty`);
  const messages = list.map((m: unknown, i): ChatMessage => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw new RecordError(`${field}[${i}] is not an object (got ${typeName(m)})`);
    }
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string') throw new RecordError(`${field}[${i}].role is not a string (got ${typeName(role)})`);
    if (typeof content !== 'string') {
      throw new RecordError(`${field}[${i}].content is not a string (got ${typeName(content)})`);
    }
    return { role, content };
  });
  if (!messages.some((m) => m.role === 'assistant')) throw new RecordError(`field '${field}' has no assistant turn`);
  return messages;
}

// ---- v1 CSV ---------------------------------------------------------------------------------------------------

/** Splits one RFC 4180 CSV record (quotes doubled inside quoted fields; pandas' reader has no escapechar). */
export function splitCsv(record: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < record.length; i++) {
    const c = record[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (record[i + 1] === '"') {
        cell += '"';
        i++;
      } else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  if (quoted) throw new RecordError('unterminated quoted CSV field');
  cells.push(cell);
  return cells;
}

function csvRow(record: string, columns: string[]): Map<string, string> {
  const cells = splitCsv(record);
  if (cells.length !== columns.length) {
    throw new RecordError(`expected ${columns.length} CSV fields (${columns.join(',')}), got ${cells.length}`);
  }
  return new Map(columns.map((name, i) => [name, cells[i]]));
}

function requireCell(row: Map<string, string>, column: string): string {
  const value = row.get(column);
  if (value === undefined) throw new RecordError(`missing column '${column}'`);
  if (value === '') throw new RecordError(`empty field '${column}'`);
  return value;
}

/** Python-style slice s[:n] (counts code points, not UTF-16 units). */
function pyPrefix(s: string, n: number): string {
  const points = Array.from(s);
  return points.length <= n ? s : points.slice(0, n).join('');
}

/** Python str() of a parsed literal element (strings as is, numbers in decimal, lists by repr is not needed). */
function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

/** v1 SFTDataset.__getitem__ steps 1-3: history pairs (each side cut to maxSeqLen/2 characters), then q and a. */
function v1SftRecord(row: Map<string, string>, maxSeqLen: number): ParsedRecord {
  const q = requireCell(row, 'q');
  const a = requireCell(row, 'a');
  const history = parsePythonLiteral(row.get('history') ?? '');
  const messages: ChatMessage[] = [];
  const half = Math.floor(maxSeqLen / 2);
  if (Array.isArray(history)) {
    for (const pair of history) {
      // v1 keeps items with len > 1, whatever they are: a pair list, or (oddly) a string's first two chars.
      const items: unknown[] | undefined = Array.isArray(pair) ? pair : typeof pair === 'string' ? Array.from(pair)
        : undefined;
      if (!items || items.length <= 1) continue;
      messages.push({ role: 'user', content: pyPrefix(pyStr(items[0]), half) });
      messages.push({ role: 'assistant', content: pyPrefix(pyStr(items[1]), half) });
    }
  }
  messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
  return { kind: 'chat', messages, mask: 'v1-last-answer' };
}

/**
 * Reads a Python literal made of lists, tuples, strings, numbers, None/True/False: what v1 wrote with str() and
 * read back with eval(). Returns undefined when the text is not such a literal (v1 then uses an empty history).
 */
export function parsePythonLiteral(text: string): unknown {
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const fail = (): never => {
    throw new SyntaxError(`not a Python literal at ${i}`);
  };
  const parseString = (): string => {
    const quote = text[i++];
    let out = '';
    while (i < text.length && text[i] !== quote) {
      if (text[i] !== '\\') {
        out += text[i++];
        continue;
      }
      const e = text[i + 1];
      i += 2;
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
      if (e in simple) out += simple[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const code = parseInt(text.slice(i, i + len), 16);
        if (Number.isNaN(code)) fail();
        out += String.fromCodePoint(code);
        i += len;
      } else out += '\\' + e;
    }
    if (text[i] !== quote) fail();
    i++;
    return out;
  };
  const parseValue = (): unknown => {
    skipSpace();
    const c = text[i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const items: unknown[] = [];
      for (;;) {
        skipSpace();
        if (text[i] === close) {
          i++;
          return items;
        }
        items.push(parseValue());
        skipSpace();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail();
      }
    }
    if (c === "'" || c === '"') return parseString();
    const word = /^(None|True|False|-?\d+(\.\d+)?)/.exec(text.slice(i, i + 32));
    if (!word) return fail();
    i += word[0].length;
    if (word[0] === 'None') return null;
    if (word[0] === 'True' || word[0] === 'False') return word[0] === 'True';
    return Number(word[0]);
  };
  try {
    const value = parseValue();
    skipSpace();
    return i === text.length ? value : undefined;
  } catch {
    return undefined;
  }
}
