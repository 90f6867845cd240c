// A byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (+ tokenizer_config.json), reproducing
// Hugging Face tokenizers' encode(text, add_special_tokens=false) and decode(ids, skip_special_tokens=false)
// exactly, plus the config's Jinja chat template. The pipeline for encode:
//   text → added tokens cut out (single ids) → pre-tokenizer pieces (GPT-2 regex) → UTF-8 bytes → BPE merges → ids
// A piece → ids cache makes repeated words (most of English, all of the whitespace) a single Map lookup.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Template } from '@huggingface/jinja' with { 'resolution-mode': 'import' };
import { BpeModel, type MergeEntry } from './bpe';
import { byteToChar, pushTokenBytes, utf8Lossy } from './bytes';
import { AddedTokenSplitter, hasByteLevel, preTokenizerSteps, runSteps, type AddedToken } from './pretokenize';
import { StreamDecoder } from './stream';
import type { ChatMessage, TextTokenizer } from './types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

// @huggingface/jinja ships CommonJS too (its "require" export), but its types are declared as an ES module.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jinja = require('@huggingface/jinja') as { Template: typeof Template };

/** Pieces longer than this are not cached (they rarely repeat and would bloat the cache). */
const CACHE_MAX_PIECE = 128;
/** The cache is cleared when it holds this many pieces, which bounds its memory. */
const CACHE_MAX_ENTRIES = 1 << 17;

/** A special-token field of tokenizer_config.json: a string, an AddedToken object, or null. */
function tokenContent(field: Json): string | undefined {
  if (typeof field === 'string') return field;
  if (field && typeof field.content === 'string') return field.content;
  return undefined;
}

// Scratch buffer for one piece's UTF-8 bytes.
let pieceBytes = new Uint8Array(1024);

/** UTF-8 encodes `s` into pieceBytes (lone surrogates → U+FFFD); returns the byte count. */
function encodePiece(s: string): number {
  if (pieceBytes.length < s.length * 3) pieceBytes = new Uint8Array(s.length * 3 * 2);
  const b = pieceBytes;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { b[n++] = c; continue; }
    if (c < 0x800) { b[n++] = 0xc0 | (c >> 6); b[n++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
        b[n++] = 0xf0 | (c >> 18); b[n++] = 0x80 | ((c >> 12) & 63); b[n++] = 0x80 | ((c >> 6) & 63); b[n++] = 0x80 | (c & 63);
        continue;
      }
      c = 0xfffd; // a lone surrogate
    }
    b[n++] = 0xe0 | (c >> 12); b[n++] = 0x80 | ((c >> 6) & 63); b[n++] = 0x80 | (c & 63);
  }
  return n;
}

export interface TokenizerSource {
  /** The text of tokenizer.json. */
  tokenizerJson: string;
  /** The text of tokenizer_config.json, or null when there is none. */
  configJson: string | null;
  /** Where they came from, for error messages. */
  name: string;
}

export class Tokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** The parsed tokenizer_config.json ({} when there is none). */
  readonly config: Json;
  /** The files this tokenizer was built from (worker threads rebuild it from these). */
  readonly source: TokenizerSource;

  private readonly model: BpeModel;
  private readonly added: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly splitter: AddedTokenSplitter;
  private readonly steps: ReturnType<typeof preTokenizerSteps>;
  private readonly byteLevelDecoder: boolean;
  private readonly cache = new Map<string, number[]>();
  private template?: Template;

  /** Loads a folder holding tokenizer.json (+ tokenizer_config.json), or a tokenizer.json file (a
   *  tokenizer_config.json next to it is used when present). */
  static load(dirOrFile: string): Tokenizer {
    const isDir = fs.statSync(dirOrFile).isDirectory();
    const file = isDir ? path.join(dirOrFile, 'tokenizer.json') : dirOrFile;
    const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
    return new Tokenizer({
      tokenizerJson: fs.readFileSync(file, 'utf8'),
      configJson: fs.existsSync(configFile) ? fs.readFileSync(configFile, 'utf8') : null,
      name: file,
    });
  }

  constructor(source: TokenizerSource) {
    this.source = source;
    const where = source.name;
    let json: Json;
    try {
      json = JSON.parse(source.tokenizerJson);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
    }
    try {
      this.config = source.configJson === null ? {} : JSON.parse(source.configJson);
    } catch (e) {
      throw new Error(`${path.join(path.dirname(where), 'tokenizer_config.json')}: not valid JSON (${(e as Error).message})`);
    }
    const m = json.model;
    if (m?.type !== 'BPE') throw new Error(`${where}: model.type is ${JSON.stringify(m?.type)}; only BPE is supported`);
    if (m.continuing_subword_prefix || m.end_of_word_suffix || m.dropout) {
      throw new Error(`${where}: model.continuing_subword_prefix / end_of_word_suffix / dropout are not supported`);
    }
    if (json.normalizer) throw new Error(`${where}: normalizer ${JSON.stringify(json.normalizer.type)} is not supported`);
    if (!hasByteLevel(json.pre_tokenizer)) throw new Error(`${where}: pre_tokenizer must include ByteLevel (byte-level BPE)`);
    const decoderType = json.decoder?.type ?? null;
    if (decoderType !== null && decoderType !== 'ByteLevel') throw new Error(`${where}: decoder ${decoderType} is not supported`);
    this.byteLevelDecoder = decoderType === 'ByteLevel';

    this.model = new BpeModel(m.vocab, m.merges as MergeEntry[], byteToChar, Boolean(m.ignore_merges));
    this.steps = preTokenizerSteps(json.pre_tokenizer, `${where}: pre_tokenizer`);
    this.added = ((json.added_tokens ?? []) as Json[]).map((t, i) => {
      if (typeof t.id !== 'number' || typeof t.content !== 'string') throw new Error(`${where}: added_tokens[${i}] needs id and content`);
      return { id: t.id, content: t.content, special: Boolean(t.special), normalized: Boolean(t.normalized),
        lstrip: Boolean(t.lstrip), rstrip: Boolean(t.rstrip), singleWord: Boolean(t.single_word) };
    });
    for (const t of this.added) { this.addedById.set(t.id, t); this.addedByContent.set(t.content, t); }
    this.splitter = new AddedTokenSplitter(this.added);

    let maxId = -1;
    for (const id of this.model.vocab.values()) maxId = Math.max(maxId, id);
    for (const t of this.added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    const idOf = (field: Json) => {
      const content = tokenContent(field);
      return content === undefined ? -1 : this.tokenToId(content) ?? -1;
    };
    this.bosId = idOf(this.config.bos_token);
    this.eosId = idOf(this.config.eos_token);
    this.padId = idOf(this.config.pad_token);
    this.unkId = idOf(this.config.unk_token ?? m.unk_token);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken[id];
  }

  /** Whether an id is an added token marked special (what skip_special_tokens would drop). */
  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special ?? false;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const segment of this.splitter.split(text)) {
      if (segment.id !== undefined) ids.push(segment.id);
      else if (segment.text.length > 0) this.encodeOrdinary(segment.text, ids);
    }
    return ids;
  }

  encodeBatch(texts: string[]): number[][] {
    return texts.map((t) => this.encode(t));
  }

  /** Text without added tokens → ids, piece by piece through the cache. */
  private encodeOrdinary(text: string, out: number[]): void {
    for (const piece of runSteps(this.steps, text)) {
      const cached = this.cache.get(piece);
      if (cached !== undefined) {
        for (let i = 0; i < cached.length; i++) out.push(cached[i]);
        continue;
      }
      const start = out.length;
      this.model.encodeWord(pieceBytes, encodePiece(piece), out);
      if (piece.length <= CACHE_MAX_PIECE) {
        if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
        this.cache.set(piece, out.slice(start));
      }
    }
  }

  /** Appends the bytes the decoder produces for one id (nothing for unknown ids). */
  private tokenBytes(id: number, out: number[]): void {
    const token = this.idToToken(id);
    if (token === undefined) return;
    if (this.byteLevelDecoder) pushTokenBytes(token, out);
    else for (const b of Buffer.from(token, 'utf8')) out.push(b);
  }

  decode(ids: ArrayLike<number>): string {
    if (!this.byteLevelDecoder) {
      // Without a decoder, Hugging Face joins the tokens with spaces.
      return Array.from(ids, (id) => this.idToToken(id)).filter((t) => t !== undefined).join(' ');
    }
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) this.tokenBytes(ids[i], bytes);
    return utf8Lossy(Uint8Array.from(bytes));
  }

  /** A decoder for generation: push ids, get text made only of whole characters. */
  createStreamDecoder(): StreamDecoder {
    return new StreamDecoder((id, out) => this.tokenBytes(id, out));
  }

  /**
   * Renders tokenizer_config.json's chat_template as transformers' apply_chat_template does: the special tokens
   * (bos_token, eos_token, unk_token, pad_token, additional_special_tokens) are passed as strings, and `extra`
   * adds template variables such as tools, open_thinking or enable_thinking. (@huggingface/jinja itself provides
   * raise_exception and trims blocks like transformers' trim_blocks/lstrip_blocks.)
   */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean, extra: Record<string, unknown> = {}): string {
    if (this.template === undefined) {
      const source = this.config.chat_template;
      if (typeof source !== 'string') throw new Error(`${this.source.name}: tokenizer_config.json has no chat_template string`);
      this.template = new jinja.Template(source);
    }
    const specials: Record<string, unknown> = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const content = tokenContent(this.config[key]);
      if (content !== undefined) specials[key] = content;
    }
    specials.additional_special_tokens = (this.config.additional_special_tokens ?? []).map(tokenContent);
    return this.template.render({
      ...specials,
      ...extra,
      messages,
      add_generation_prompt: addGenerationPrompt,
    });
  }
}
