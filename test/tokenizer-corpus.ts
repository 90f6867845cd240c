// A deterministic corpus of awkward text for tokenizer tests: Chinese, English, digits, code, whitespace runs,
// emoji, lone surrogates, Unicode spaces, and special tokens embedded in text. Not a test file itself.
import { CHINESE, CODE, ENGLISH, rng } from '../bench/tokenizer';

const SPACES = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0', '\u3000', '\u2003', '\u0085', '\ufeff',
  '\u200b', '\u2028', '\u180e', '\v', '\f', '       '];
const SYMBOLS = ['😀', '🚀', '👨‍👩‍👧', '🇨🇳', '❤️', '∑', 'π', '≤', '→', '©', '…', '—', '「', '」', '，', '。', '！', '？', '、',
  '\ud800', '\udfff', '\udc00x', 'a\ud83d', '\u0000', '\u0001', '\u007f', '\ufffd', '½', '²', 'Ⅻ', '٣', '𝔘𝔫𝔦', '\u0301'];
const SPECIALS = ['<s>', '</s>', '<unk>', '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>',
  '<tool_call>', '<|buffer3|>', '<s', 's>', '<|im_start', '<<s>>', '</s></s>'];

/**
 * `count` texts of 0-200 fragments. With `decodeId` and `vocabSize`, some fragments are random vocabulary tokens
 * decoded to text, so that rare merges get exercised too.
 */
export function makeCorpus(seed: number, count: number, decodeId?: (id: number) => string, vocabSize = 0): string[] {
  const r = rng(seed);
  const pick = <T>(a: ArrayLike<T>) => a[Math.floor(r() * a.length)];
  const digits = () => String(Math.floor(r() * 10 ** Math.floor(r() * 12)));
  const chinese = () => Array.from({ length: 1 + Math.floor(r() * 12) }, () => pick(CHINESE)).join('');
  const fragment = (): string => {
    const k = r();
    if (k < 0.3) return chinese();
    if (k < 0.5) return (r() < 0.5 ? ' ' : '') + pick(ENGLISH);
    if (k < 0.58) return digits();
    if (k < 0.64) return pick(CODE);
    if (k < 0.76) return pick(SPACES).repeat(1 + Math.floor(r() * 3));
    if (k < 0.88) return pick(SYMBOLS);
    if (k < 0.93) return pick(SPECIALS);
    if (decodeId && vocabSize > 0) return decodeId(Math.floor(r() * vocabSize));
    return String.fromCodePoint(Math.floor(r() * 0x3000));
  };
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(r() * r() * 200);
    let s = '';
    for (let j = 0; j < n; j++) s += fragment();
    texts.push(s);
  }
  return texts;
}
