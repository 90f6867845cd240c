// Stop strings for streamed generation (the `generate` CLI's --stop, the server's "stop" field).
// Text arrives piece by piece (whole characters, from the tokenizer's stream decoder). Generation ends as soon as
// the text contains a stop string; the stop string and anything after it are never shown. While streaming, a
// tail that could still grow into a stop string ("</" when "</s>" is a stop) is held back until it is decided.
//
// Invariant: text[0 .. emitted) is final. Every suffix starting before `emitted` is no prefix of any stop string
// (otherwise it would have been held), so a stop string can only be completed at a position ≥ emitted.

export class StopStringFilter {
  private text = '';
  private emitted = 0;
  private readonly stops: string[];
  /** True once a stop string was seen; push() then returns nothing more. */
  stopped = false;

  /** Empty strings are ignored (they would stop before the first character). */
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds decoded text; returns the part that may be shown now. */
  push(piece: string): string {
    if (this.stopped) return '';
    this.text += piece;
    // The earliest stop string wins when several complete in the same piece.
    let at = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, this.emitted);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      this.stopped = true;
      this.text = this.text.slice(0, at);
      return this.take(at);
    }
    return this.take(this.text.length - this.heldLength());
  }

  /** The end of the stream: whatever was held back is shown (no stop string completed). */
  flush(): string {
    return this.take(this.text.length);
  }

  /** All text so far, cut before the stop string when one was seen. */
  get full(): string {
    return this.text;
  }

  /** The longest tail of the text that is a proper prefix of some stop string. */
  private heldLength(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length - this.emitted); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }

  /** Marks text[emitted .. end) as shown and returns it. */
  private take(end: number): string {
    const out = this.text.slice(this.emitted, end);
    this.emitted = Math.max(this.emitted, end);
    return out;
  }
}
