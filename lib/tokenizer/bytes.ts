// Byte-level BPE works on bytes, but its vocabulary is stored as printable strings: GPT-2's byte-to-unicode map
// gives each of the 256 byte values one visible character (printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in byte order). This file holds that map and the UTF-8 conversions around it.

/** byteToChar[b] is the vocabulary character that stands for byte b. */
export const byteToChar: string[] = (() => {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars = new Array<string>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCharCode(printable(b) ? b : next++);
  return chars;
})();

/** charToByte.get(c) is the byte a vocabulary character stands for (undefined for characters outside the map). */
export const charToByte: Map<string, number> = new Map(byteToChar.map((c, b) => [c, b]));

const utf8 = new TextEncoder();
const lossyUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of a JS string; lone surrogates become U+FFFD (EF BF BD), as when Node hands a string to Rust. */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/** Decodes UTF-8, replacing each maximal invalid subsequence by U+FFFD (the same rule as Rust's from_utf8_lossy). */
export function utf8Lossy(bytes: Uint8Array): string {
  return lossyUtf8.decode(bytes);
}

/** A string's bytes as vocabulary characters ("Hello world" → "HelloĠworld"). */
export function toByteChars(text: string): string {
  const bytes = utf8Bytes(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += byteToChar[bytes[i]];
  return out;
}

/**
 * Appends a vocabulary token's bytes to `out`. Like Hugging Face's ByteLevel decoder, a token with any character
 * outside the byte map (an added token such as "<think> x" with a space) contributes its own UTF-8 bytes instead.
 */
export function pushTokenBytes(token: string, out: number[]): void {
  const start = out.length;
  for (let i = 0; i < token.length; i++) {
    const b = charToByte.get(token[i]);
    if (b === undefined) {
      out.length = start;
      for (const raw of utf8Bytes(token)) out.push(raw);
      return;
    }
    out.push(b);
  }
}
