// A deterministic corpus of awkward text for tokenizer tests: Chinese, English, digits, code, whitespace runs,
// emoji, lone surrogates, Unicode spaces, and special tokens embedded in text. Not a test file itself.

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHINESE = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切团推查够呀哪官河';
const ENGLISH = ['the', 'quick', 'brown', 'fox', "don't", "it's", "we'll", "they've", 'MiniMind', 'tokenizer', 'BPE',
  'Hello', 'WORLD', 'naïve', 'café', 'Straße', 'αβγ', 'Привет', 'مرحبا', 'नमस्ते', 'こんにちは', '한국어'];
const CODE = ['def f(x):\n    return x**2\n', 'for (let i = 0; i < n; i++) {\n\tsum += a[i];\n}', '#include <stdio.h>',
  'x = {"a": [1, 2.5e-3, null]}', 'if a != b && c <= d || !e:', '  // comment\r\n', 'SELECT * FROM t WHERE id=42;'];
const SPACES = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0', '\u3000', '\u2003', '\u0085', '\ufeff',
  '\u200b', '\u2028', '\u180e', '\v', '\f', '       '];
const SYMBOLS = ['😀', '🚀', '👨‍👩‍👧', '🇨🇳', '❤️', '∑', 'π', '≤', '→', '©', '…', '—', '「', '」', '，', '。', '！', '？', '、',
  '\ud800', '\udfff', '\udc00x', 'a\ud83d', '\u0000', '\u0001', '\u007f', '\ufffd', '½', '²', 'Ⅻ', '٣', '𝔘𝔫𝔦', '\u0301'];
const SPECIALS = ['<s>', '</s>', '<unk>', '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>',
  '<tool_call>', '<|buffer3|>', '<s', 's>', '<|im_start', '<<s>>', '</s></s>'];

/**
 * `count` texts of 0-200 fragments. `idToToken`/`vocabSize` add random vocabulary tokens decoded to text, so that
 * rare merges get exercised too.
 */
export function makeCorpus(seed: number, count: number, idToToken?: (id: number) => string | undefined,
  vocabSize = 0): string[] {
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
    if (idToToken && vocabSize > 0) {
      const t = idToToken(Math.floor(r() * vocabSize));
      if (t !== undefined) return t;
    }
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

/** A text of about `bytes` UTF-8 bytes, mixing Chinese prose and English/code like a pretraining corpus. */
export function makeBenchText(seed: number, bytes: number): string {
  const r = rng(seed);
  const pick = <T>(a: ArrayLike<T>) => a[Math.floor(r() * a.length)];
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    let s: string;
    const k = r();
    if (k < 0.6) s = Array.from({ length: 5 + Math.floor(r() * 25) }, () => pick(CHINESE)).join('') + pick('，。！？、；：');
    else if (k < 0.9) s = Array.from({ length: 3 + Math.floor(r() * 12) }, () => pick(ENGLISH)).join(' ') + pick(['. ', ', ', '\n']);
    else s = pick(CODE);
    parts.push(s);
    size += Buffer.byteLength(s);
  }
  return parts.join('');
}
