// Stop strings over streamed text. A stop string may arrive split across tokens, so text that could
// still turn out to be the start of one is held back until it either completes a match (and is dropped
// with everything after it) or can no longer match (and is released).

/** Length of the longest suffix of `text` that is a proper prefix of some needle. */
export function partialSuffix(text: string, needles: readonly string[]): number {
  let best = 0;
  for (const s of needles) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

export class StopStrings {
  private held = '';
  private stoppedBy: string | null = null;

  constructor(readonly stops: readonly string[]) {
    for (const s of stops) if (typeof s !== 'string' || s.length === 0) throw new RangeError('stop strings must be non-empty strings');
  }

  /** The stop string that matched, once one has. */
  get matched(): string | null {
    return this.stoppedBy;
  }

  /** Text that is safe to show now. After a match it returns the text before the match, then ''. */
  push(text: string): string {
    if (this.stoppedBy !== null) return '';
    if (this.stops.length === 0) return text;
    const buf = this.held + text;
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        this.stoppedBy = s;
      }
    }
    if (at >= 0) {
      this.held = '';
      return buf.slice(0, at);
    }
    const keep = partialSuffix(buf, this.stops);
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** The held-back text at the end of generation: it never became a stop string. */
  flush(): string {
    const rest = this.stoppedBy === null ? this.held : '';
    this.held = '';
    return rest;
  }
}
