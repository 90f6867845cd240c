// Splitting text before BPE, in Hugging Face tokenizers' order:
//  1. added tokens (specials such as <s> or <|im_end|>, and other added tokens) are cut out first and become
//     single ids: leftmost match, longest token on ties; tokens with normalized=false are cut before those with
//     normalized=true (there is no normalizer in these files, so that order is the only difference);
//  2. the pre-tokenizer the file names splits the rest: ByteLevel (the GPT-2 regex below, and an optional prefix
//     space), or a Split by regex followed by ByteLevel, or a Sequence of those.

/** The whitespace set of Oniguruma's `\s` (Unicode White_Space), which is what the Rust library matches.
 *  JS's own `\s` differs: it lacks U+0085 and adds U+FEFF. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** GPT-2's split pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
export const GPT2_SPLIT = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu');

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

/** A piece of input: either an added token's id, or text still to be pre-tokenized. */
export type Segment = { id: number; text?: undefined } | { id?: undefined; text: string };

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// The Rust regex crate's Unicode `\w` and `\s`, which Hugging Face uses for single_word, lstrip and rstrip.
const WORD = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const isWordChar = (c: string) => WORD.test(c);
/** The character (a whole surrogate pair when there is one) that ends just before index i. */
function charBefore(s: string, i: number): string {
  const low = s.charCodeAt(i - 1);
  const high = i >= 2 ? s.charCodeAt(i - 2) : 0;
  return low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff ? s.slice(i - 2, i) : s[i - 1];
}
const SPACE = new RegExp(`[${WS}]`);
const isSpace = (c: string) => SPACE.test(c);

/** Cuts added tokens out of text. */
export class AddedTokenSplitter {
  private readonly passes: { pattern: RegExp; byContent: Map<string, AddedToken> }[] = [];

  constructor(tokens: AddedToken[]) {
    for (const normalized of [false, true]) {
      const group = tokens.filter((t) => t.normalized === normalized && t.content.length > 0);
      if (group.length === 0) continue;
      // Longest first, so that at one position the alternation picks the longest token (leftmost-longest).
      const alternatives = [...group].sort((a, b) => b.content.length - a.content.length).map((t) => escapeRegex(t.content));
      this.passes.push({ pattern: new RegExp(alternatives.join('|'), 'g'), byContent: new Map(group.map((t) => [t.content, t])) });
    }
  }

  split(text: string): Segment[] {
    let segments: Segment[] = [{ text }];
    for (const pass of this.passes) {
      const out: Segment[] = [];
      for (const s of segments) {
        if (s.text === undefined) out.push(s);
        else this.splitOne(s.text, pass.pattern, pass.byContent, out);
      }
      segments = out;
    }
    return segments;
  }

  private splitOne(text: string, pattern: RegExp, byContent: Map<string, AddedToken>, out: Segment[]): void {
    let done = 0; // end of the last piece emitted
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const token = byContent.get(m[0])!;
      let start = m.index;
      let stop = start + m[0].length;
      if (token.singleWord) {
        const wordBefore = start > 0 && isWordChar(charBefore(text, start));
        const wordAfter = stop < text.length && isWordChar(String.fromCodePoint(text.codePointAt(stop)!));
        if (wordBefore || wordAfter) continue;
      }
      if (token.lstrip) while (start > done && isSpace(text[start - 1])) start--;
      if (token.rstrip) while (stop < text.length && isSpace(text[stop])) stop++;
      if (start > done) out.push({ text: text.slice(done, start) });
      out.push({ id: token.id });
      done = stop;
      pattern.lastIndex = stop;
    }
    if (done < text.length) out.push({ text: text.slice(done) });
  }
}

/** One step of pre-tokenization: turns each piece into smaller pieces. */
type SplitStep = (piece: string, out: string[]) => void;

/** Pieces of a regex split where matches and the text between them are both kept (behaviour "Isolated"). */
function isolatedSplit(pattern: RegExp): SplitStep {
  return (piece, out) => {
    let done = 0;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(piece); m !== null; m = pattern.exec(piece)) {
      if (m[0].length === 0) { pattern.lastIndex++; continue; }
      if (m.index > done) out.push(piece.slice(done, m.index));
      out.push(m[0]);
      done = m.index + m[0].length;
    }
    if (done < piece.length) out.push(piece.slice(done));
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** True when the pre-tokenizer maps text to byte characters (it has a ByteLevel step), as this BPE requires. */
export function hasByteLevel(config: Json): boolean {
  return config?.type === 'ByteLevel' || (config?.type === 'Sequence' && (config.pretokenizers as Json[]).some(hasByteLevel));
}

/** Builds the split steps a tokenizer.json `pre_tokenizer` describes. */
export function preTokenizerSteps(config: Json, where = 'pre_tokenizer'): SplitStep[] {
  if (config === null || config === undefined) throw new Error(`${where}: a byte-level BPE needs a ByteLevel pre-tokenizer`);
  switch (config.type) {
    case 'ByteLevel': {
      const steps: SplitStep[] = [];
      if (config.add_prefix_space) steps.push((piece, out) => { out.push(piece.startsWith(' ') ? piece : ` ${piece}`); });
      if (config.use_regex ?? true) steps.push(isolatedSplit(GPT2_SPLIT));
      return steps;
    }
    case 'Split': {
      const behavior = config.behavior ?? 'Isolated';
      if (behavior !== 'Isolated' || config.invert) {
        throw new Error(`${where}: Split with behavior ${behavior}${config.invert ? ' (inverted)' : ''} is not supported`);
      }
      const source = config.pattern?.Regex ?? (config.pattern?.String !== undefined ? escapeRegex(config.pattern.String) : undefined);
      if (source === undefined) throw new Error(`${where}.pattern: expected {"Regex": ...} or {"String": ...}`);
      let pattern: RegExp;
      try {
        pattern = new RegExp(source, 'gu');
      } catch (e) {
        throw new Error(`${where}.pattern: ${JSON.stringify(source)} is not a JavaScript regex (${(e as Error).message})`);
      }
      return [isolatedSplit(pattern)];
    }
    case 'Sequence':
      return (config.pretokenizers as Json[]).flatMap((c, i) => preTokenizerSteps(c, `${where}.pretokenizers[${i}]`));
    default:
      throw new Error(`${where}: pre-tokenizer type ${JSON.stringify(config.type)} is not supported (ByteLevel, Split, Sequence are)`);
  }
}

/** Applies the steps in order; returns the final pieces (not yet mapped to bytes). */
export function runSteps(steps: SplitStep[], text: string): string[] {
  let pieces = [text];
  for (const step of steps) {
    const out: string[] = [];
    for (const p of pieces) step(p, out);
    pieces = out;
  }
  return pieces;
}
