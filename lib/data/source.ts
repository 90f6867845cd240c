// Streaming input: reads a file of any size chunk by chunk (never whole) and yields its records in groups, each
// with the line it starts on, so errors can name file:line.
//   jsonl       one record per non-blank line
//   text        one document per non-blank line
//   csv         a header line, then one record per row; a quoted field may span lines
//   json-array  `[ {...}, {...} ]` (v1 DPO's train_data.json): one record per top-level object
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { InputFormat, RawRecord } from './records';

/** Picks the format from the extension; `.json` is a JSON array when its first non-space character is `[`. */
export function detectFormat(file: string): InputFormat {
  const lower = file.toLowerCase();
  if (lower.endsWith('.jsonl')) return 'jsonl';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.json')) {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(4096);
      const n = fs.readSync(fd, head, 0, head.length, 0);
      const first = head.subarray(0, n).toString('utf8').replace(/^\uFEFF/, '').trimStart()[0];
      return first === '[' ? 'json-array' : 'jsonl';
    } finally {
      fs.closeSync(fd);
    }
  }
  return 'text';
}

/**
 * Reads `file` as `format`: `groups()` yields the records completed by each chunk read. `onBytes(n)` reports the
 * bytes read so far (for progress). The next chunk is read only when the consumer asks, so memory stays bounded
 * by the chunk size and the consumer's queue.
 */
export class RecordStream {
  private readonly splitter: LineSplitter | JsonArraySplitter;

  constructor(private readonly file: string, format: InputFormat,
    private readonly onBytes?: (bytesRead: number) => void, private readonly chunkBytes = 1 << 20) {
    this.splitter = format === 'json-array' ? new JsonArraySplitter(file) : new LineSplitter(format);
  }

  /** The CSV header's column names (known once the first group is yielded; CSV only). */
  get columns(): string[] | undefined {
    return this.splitter instanceof LineSplitter ? this.splitter.columns : undefined;
  }

  async *groups(): AsyncGenerator<RawRecord[]> {
    const decoder = new StringDecoder('utf8');
    let bytesRead = 0;
    let first = true;
    for await (const chunk of fs.createReadStream(this.file, { highWaterMark: this.chunkBytes })) {
      bytesRead += (chunk as Buffer).length;
      let text = decoder.write(chunk as Buffer);
      if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
      const records = this.splitter.push(text);
      this.onBytes?.(bytesRead);
      if (records.length > 0) yield records;
    }
    const rest = this.splitter.end(decoder.end());
    if (rest.length > 0) yield rest;
  }
}

/** Lines → records for jsonl, text and CSV. */
class LineSplitter {
  columns?: string[];
  private partial = '';
  private lineNo = 0;
  /** An unfinished CSV record (inside a quoted field that continues on the next line). */
  private csvRecord?: { line: number; text: string; quotes: number };

  constructor(private readonly format: InputFormat) {}

  push(text: string): RawRecord[] {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    return this.takeLines(lines);
  }

  end(text: string): RawRecord[] {
    const lines = [this.partial + text];
    this.partial = '';
    const records = this.takeLines(lines);
    if (this.csvRecord) {
      // An unterminated quote at the end of the file: hand it on so the parser reports it.
      records.push({ line: this.csvRecord.line, text: this.csvRecord.text });
      this.csvRecord = undefined;
    }
    return records;
  }

  private takeLines(lines: string[]): RawRecord[] {
    const records: RawRecord[] = [];
    for (const line of lines) {
      this.lineNo++;
      if (this.format !== 'csv') {
        const text = line.endsWith('\r') ? line.slice(0, -1) : line;
        if (text.trim() !== '') records.push({ line: this.lineNo, text });
        continue;
      }
      // CSV: a record ends at a line break outside quotes, i.e. once its count of `"` is even.
      const quotes = countQuotes(line);
      const pending = this.csvRecord;
      const record = pending ? { line: pending.line, text: `${pending.text}\n${line}`, quotes: pending.quotes + quotes }
        : { line: this.lineNo, text: line, quotes };
      if (record.quotes % 2 === 1) {
        this.csvRecord = record;
        continue;
      }
      this.csvRecord = undefined;
      const text = record.text.endsWith('\r') ? record.text.slice(0, -1) : record.text;
      if (text === '') continue;
      if (!this.columns) this.columns = text.split(',').map((c) => c.trim());
      else records.push({ line: record.line, text });
    }
    return records;
  }
}

function countQuotes(s: string): number {
  let n = 0;
  for (let i = s.indexOf('"'); i !== -1; i = s.indexOf('"', i + 1)) n++;
  return n;
}

/** Top-level objects of a JSON array, found by tracking brace depth outside strings. */
class JsonArraySplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  private lineNo = 1;
  private current?: { line: number; parts: string[]; from: number };

  constructor(private readonly file: string) {}

  push(text: string): RawRecord[] {
    const records: RawRecord[] = [];
    if (this.current) this.current.from = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') this.lineNo++;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '[' && !this.started) {
        this.started = true;
      } else if (c === '{') {
        if (this.depth === 0) {
          this.current = { line: this.lineNo, parts: [], from: i };
        }
        this.depth++;
      } else if (c === '}') {
        this.depth--;
        if (this.depth === 0 && this.current) {
          this.current.parts.push(text.slice(this.current.from, i + 1));
          records.push({ line: this.current.line, text: this.current.parts.join('') });
          this.current = undefined;
        }
      } else if (!this.started && !/\s/.test(c)) {
        throw new Error(`${this.file}:${this.lineNo}: a JSON array must start with '['`);
      }
    }
    // Keep the unfinished object's text for the next chunk.
    if (this.current) this.current.parts.push(text.slice(this.current.from));
    return records;
  }

  end(text: string): RawRecord[] {
    const records = this.push(text);
    if (this.current) records.push({ line: this.current.line, text: this.current.parts.join('') });
    return records;
  }
}
