// Incremental decoding for generation: push ids one at a time and get back only whole characters. A token can end
// in the middle of a UTF-8 character (Chinese characters are 3 bytes, emoji 4, and byte-level BPE splits them), so
// bytes that could still become a valid character are held back until the next token completes them. Bytes that
// can no longer become valid are emitted as U+FFFD exactly where a full `decode` would put them, so the
// concatenation of everything pushed plus `flush()` equals `decode(allIds)`.
import { utf8Lossy } from './bytes';

/** Length of a UTF-8 sequence starting with `lead`, or 0 if it cannot start one. */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Whether `b` may follow `lead` as its first continuation byte (excludes overlongs and surrogates, as UTF-8 does). */
function validSecond(lead: number, b: number): boolean {
  if (lead === 0xe0) return b >= 0xa0 && b <= 0xbf;
  if (lead === 0xed) return b >= 0x80 && b <= 0x9f;
  if (lead === 0xf0) return b >= 0x90 && b <= 0xbf;
  if (lead === 0xf4) return b >= 0x80 && b <= 0x8f;
  return b >= 0x80 && b <= 0xbf;
}

/** Index where an unfinished-but-still-valid character starts at the end of `bytes`, or bytes.length if none. */
export function incompleteTailStart(bytes: number[]): number {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const start = bytes.length - back;
    const need = sequenceLength(bytes[start]);
    if (need === 0) {
      if (bytes[start] >= 0x80 && bytes[start] <= 0xbf) continue; // a continuation byte: look further back
      return bytes.length;
    }
    if (back >= need) return bytes.length; // complete (or over-long, hence already decided)
    for (let i = start + 1; i < bytes.length; i++) {
      const ok = i === start + 1 ? validSecond(bytes[start], bytes[i]) : bytes[i] >= 0x80 && bytes[i] <= 0xbf;
      if (!ok) return bytes.length;
    }
    return start;
  }
  return bytes.length;
}

export class StreamDecoder {
  private pending: number[] = [];

  /** @param tokenBytes appends the bytes of one id (nothing for unknown ids). */
  constructor(private readonly tokenBytes: (id: number, out: number[]) => void) {}

  /** Adds ids; returns the text they complete ('' when a character is still unfinished). */
  push(...ids: number[]): string {
    for (const id of ids) this.tokenBytes(id, this.pending);
    const cut = incompleteTailStart(this.pending);
    if (cut === 0) return '';
    const text = utf8Lossy(Uint8Array.from(this.pending.slice(0, cut)));
    this.pending = this.pending.slice(cut);
    return text;
  }

  /** Ends the stream: whatever is still held back is emitted (as U+FFFD, being an unfinished character). */
  flush(): string {
    const text = utf8Lossy(Uint8Array.from(this.pending));
    this.pending = [];
    return text;
  }
}
