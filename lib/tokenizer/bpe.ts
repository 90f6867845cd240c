// The BPE model of a byte-level tokenizer: a vocabulary (token string → id) and a ranked list of merges.
// `encodeWord` turns one pre-token (already mapped to byte characters) into ids by repeatedly merging the adjacent
// pair with the lowest merge rank, leftmost first, exactly as Hugging Face tokenizers' `Word::merge_all` does.
// The pair → merge lookup is an open-addressing hash table over typed arrays, and the merge loop runs a binary
// min-heap over (rank, position) with a doubly linked list of symbols, so a word of n bytes costs O(n log n).

/** One merge as stored in tokenizer.json: either "a b" or ["a", "b"]. */
export type MergeEntry = string | [string, string];

export function parseMerge(entry: MergeEntry, index: number): [string, string] {
  if (Array.isArray(entry)) {
    if (entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') {
      throw new Error(`model.merges[${index}]: expected ["left", "right"], got ${JSON.stringify(entry)}`);
    }
    return entry;
  }
  if (typeof entry !== 'string') throw new Error(`model.merges[${index}]: expected a string or a pair, got ${JSON.stringify(entry)}`);
  const space = entry.indexOf(' ', 1);
  if (space < 0) throw new Error(`model.merges[${index}]: "${entry}" is not "left right"`);
  return [entry.slice(0, space), entry.slice(space + 1)];
}

/** Maps a pair of ids to its merge rank; -1 when the pair does not merge. */
class PairTable {
  private readonly mask: number;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly rank: Int32Array;

  constructor(capacityHint: number) {
    let size = 16;
    while (size < capacityHint * 2) size *= 2;
    this.mask = size - 1;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.rank = new Int32Array(size);
  }

  private slot(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0 & this.mask;
  }

  set(a: number, b: number, rank: number): void {
    let i = this.slot(a, b);
    while (this.left[i] !== -1 && !(this.left[i] === a && this.right[i] === b)) i = (i + 1) & this.mask;
    this.left[i] = a;
    this.right[i] = b;
    this.rank[i] = rank;
  }

  get(a: number, b: number): number {
    let i = this.slot(a, b);
    for (;;) {
      const l = this.left[i];
      if (l === -1) return -1;
      if (l === a && this.right[i] === b) return this.rank[i];
      i = (i + 1) & this.mask;
    }
  }
}

// Scratch buffers reused by every call (JS is single-threaded per isolate); grown on demand.
let symbols = new Int32Array(256);
let prev = new Int32Array(256);
let next = new Int32Array(256);
let heap = new Float64Array(512);
const POSITION_SPAN = 2 ** 26; // heap key = rank * POSITION_SPAN + position: lowest rank first, then leftmost

function ensureCapacity(n: number): void {
  if (symbols.length >= n) return;
  let size = symbols.length;
  while (size < n) size *= 2;
  symbols = new Int32Array(size);
  prev = new Int32Array(size);
  next = new Int32Array(size);
}

export class BpeModel {
  readonly vocab: Map<string, number>;
  /** idToToken[id] for every id of the model's vocabulary (holes are undefined). */
  readonly idToToken: string[] = [];
  /** mergedId[rank]: the id the merge of that rank produces. */
  private readonly mergedId: Int32Array;
  private readonly pairs: PairTable;
  /** byteIds[b]: the id of the single-byte token for byte b, or -1 if the vocabulary lacks it. */
  readonly byteIds = new Int32Array(256).fill(-1);
  /** With ignore_merges, a pre-token that is itself in the vocabulary is emitted whole. */
  private readonly ignoreMerges: boolean;

  constructor(vocab: Record<string, number>, merges: MergeEntry[], byteChars: string[], ignoreMerges = false) {
    this.vocab = new Map(Object.entries(vocab));
    for (const [token, id] of this.vocab) this.idToToken[id] = token;
    this.ignoreMerges = ignoreMerges;
    this.mergedId = new Int32Array(merges.length);
    this.pairs = new PairTable(merges.length);
    merges.forEach((entry, rank) => {
      const [a, b] = parseMerge(entry, rank);
      const idA = this.vocab.get(a);
      const idB = this.vocab.get(b);
      const merged = this.vocab.get(a + b);
      if (idA === undefined || idB === undefined || merged === undefined) {
        throw new Error(`model.merges[${rank}]: "${a}" + "${b}" uses a token missing from model.vocab`);
      }
      if (this.pairs.get(idA, idB) === -1) this.pairs.set(idA, idB, rank);
      this.mergedId[rank] = merged;
    });
    byteChars.forEach((c, b) => { this.byteIds[b] = this.vocab.get(c) ?? -1; });
  }

  /** Rank of merging ids a and b, or -1. */
  rankOf(a: number, b: number): number {
    return this.pairs.get(a, b);
  }

  /**
   * Appends the ids of one pre-token to `out`. `bytes[0..n)` are its UTF-8 bytes; `word` is the same pre-token
   * as byte characters (used only for the ignore_merges whole-word lookup). Bytes without a vocabulary entry are
   * dropped, as the Hugging Face BPE model does when it has no unk token.
   */
  encodeWord(bytes: Uint8Array, n: number, out: number[], word?: string): void {
    if (this.ignoreMerges && word !== undefined) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) { out.push(whole); return; }
    }
    ensureCapacity(n);
    let count = 0;
    for (let i = 0; i < n; i++) {
      const id = this.byteIds[bytes[i]];
      if (id >= 0) symbols[count++] = id;
    }
    if (count <= 1) { if (count === 1) out.push(symbols[0]); return; }
    if (count >= POSITION_SPAN) throw new Error(`BPE: a pre-token of ${count} bytes is too long`);
    for (let i = 0; i < count; i++) { prev[i] = i - 1; next[i] = i + 1 < count ? i + 1 : -1; }

    let heapSize = 0;
    const push = (key: number) => {
      if (heapSize === heap.length) { const grown = new Float64Array(heap.length * 2); grown.set(heap); heap = grown; }
      let i = heapSize++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heap[parent] <= key) break;
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap[--heapSize];
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= heapSize) break;
        if (child + 1 < heapSize && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= last) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
      return top;
    };

    for (let i = 0; i + 1 < count; i++) {
      const rank = this.pairs.get(symbols[i], symbols[i + 1]);
      if (rank >= 0) push(rank * POSITION_SPAN + i);
    }
    while (heapSize > 0) {
      const key = pop();
      const rank = Math.floor(key / POSITION_SPAN);
      const pos = key - rank * POSITION_SPAN;
      if (symbols[pos] < 0) continue; // merged away into its left neighbour
      const right = next[pos];
      if (right < 0) continue;
      // A stale entry: the pair at `pos` changed since it was queued (compare what it would produce, as HF does).
      const current = this.pairs.get(symbols[pos], symbols[right]);
      if (current < 0 || this.mergedId[current] !== this.mergedId[rank]) continue;
      symbols[pos] = this.mergedId[rank];
      symbols[right] = -1;
      const after = next[right];
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos];
      if (before >= 0) {
        const r = this.pairs.get(symbols[before], symbols[pos]);
        if (r >= 0) push(r * POSITION_SPAN + before);
      }
      if (after >= 0) {
        const r = this.pairs.get(symbols[pos], symbols[after]);
        if (r >= 0) push(r * POSITION_SPAN + pos);
      }
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(symbols[i]);
  }
}
