// Translation of the Oniguruma patterns found in tokenizer.json files into JavaScript RegExps.
//
// The Rust `tokenizers` library compiles Split patterns with Oniguruma, whose syntax and Unicode
// semantics differ from JavaScript's in ways that change token boundaries: `\s` is the Unicode
// White_Space property (JavaScript's `\s` adds U+FEFF and misses U+0085), `.` excludes only `\n`,
// `^`/`$` are line anchors, `(?i:…)` is an inline flag group (not available in Node 20), `{,n}` means
// `{0,n}`. Only the constructs below are translated; anything else fails loudly rather than
// tokenizing differently from the reference. Case-insensitive groups fold ASCII letters only, which
// covers every contraction pattern in use (`(?i:'s|'t|…)`).

const WORD_CLASS_BODY = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';

// Escapes that mean the same inside and outside a character class.
const CLASS_ESCAPES: Record<string, string> = {
  s: '\\p{White_Space}',
  S: '\\P{White_Space}',
  d: '\\p{Nd}',
  D: '\\P{Nd}',
  w: WORD_CLASS_BODY,
  h: '0-9A-Fa-f',
  n: '\\n',
  r: '\\r',
  t: '\\t',
  f: '\\f',
  v: '\\v',
  a: '\\x07',
  e: '\\x1b',
};

const OUTSIDE_ESCAPES: Record<string, string> = {
  ...CLASS_ESCAPES,
  w: `[${WORD_CLASS_BODY}]`,
  W: `[^${WORD_CLASS_BODY}]`,
  h: '[0-9A-Fa-f]',
  H: '[^0-9A-Fa-f]',
  A: '^',
  z: '$',
  Z: '(?=\\n?$)',
};

// Characters that JavaScript's unicode mode only accepts escaped (as identity escapes).
const SYNTAX_CHARS = '^$\\.*+?()[]{}|/';

const propertyCache = new Map<string, string>();

/** Oniguruma accepts bare script names (`\p{Han}`); JavaScript wants `\p{Script=Han}`. */
function unicodeProperty(negated: boolean, name: string): string {
  let resolved = propertyCache.get(name);
  if (resolved === undefined) {
    resolved = name;
    if (!isValidProperty(name)) {
      if (!isValidProperty(`Script=${name}`)) throw new Error(`unknown Unicode property \\p{${name}}`);
      resolved = `Script=${name}`;
    }
    propertyCache.set(name, resolved);
  }
  return `\\${negated ? 'P' : 'p'}{${resolved}}`;
}

function isValidProperty(name: string): boolean {
  try {
    new RegExp(`\\p{${name}}`, 'u');
    return true;
  } catch {
    return false;
  }
}

function isAsciiLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

function otherCase(c: string): string {
  return c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
}

class Translator {
  private i = 0;
  private out = '';
  // One entry per open group: whether ASCII case folding was on outside it.
  private readonly foldStack: boolean[] = [];
  private fold = false;
  // Whether the previous item can take a quantifier, and whether it already has one.
  private lastWasQuantifier = false;

  constructor(private readonly src: string) {}

  run(): string {
    while (this.i < this.src.length) this.step();
    if (this.foldStack.length > 0) this.fail('unterminated group');
    return this.out;
  }

  private fail(problem: string): never {
    throw new Error(`cannot translate regex /${this.src}/: ${problem} at offset ${this.i}`);
  }

  private atom(text: string): void {
    this.out += text;
    this.lastWasQuantifier = false;
  }

  private step(): void {
    const src = this.src;
    const c = String.fromCodePoint(src.codePointAt(this.i)!);
    switch (c) {
      case '\\':
        this.atom(this.escape(false));
        return;
      case '[':
        this.atom(this.charClass());
        return;
      case '(':
        this.openGroup();
        return;
      case ')':
        if (this.foldStack.length === 0) this.fail('unbalanced )');
        this.fold = this.foldStack.pop()!;
        this.out += ')';
        this.lastWasQuantifier = false;
        this.i++;
        return;
      case '.':
        this.i++;
        this.atom('[^\\n]');
        return;
      case '^':
        this.i++;
        this.atom('(?<![^\\n])');
        return;
      case '$':
        this.i++;
        this.atom('(?![^\\n])');
        return;
      case '*':
      case '+':
      case '?':
        this.quantifier(c);
        return;
      case '{': {
        const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(src.slice(this.i));
        if (m && (m[1] !== '' || m[3])) {
          this.i += m[0].length;
          this.quantifierText(`{${m[1] || '0'}${m[2] ?? ''}${m[3] ?? ''}}`);
        } else {
          this.i++;
          this.atom('\\{');
        }
        return;
      }
      case '}':
      case ']':
      case '/':
        this.i++;
        this.atom(`\\${c}`);
        return;
      default:
        this.i += c.length;
        this.atom(this.fold && isAsciiLetter(c) ? `[${c}${otherCase(c)}]` : c);
    }
  }

  private quantifier(q: string): void {
    this.i++;
    if (this.lastWasQuantifier) {
      if (q === '?') {
        this.out += '?'; // lazy
        return;
      }
      this.fail(`possessive or stacked quantifier "${q}"`);
    }
    this.quantifierText(q);
  }

  private quantifierText(q: string): void {
    if (this.lastWasQuantifier) this.fail('stacked quantifier');
    this.out += q;
    this.lastWasQuantifier = true;
  }

  private openGroup(): void {
    const rest = this.src.slice(this.i);
    let prefix: string;
    let emitted: string;
    let fold = this.fold;
    if (rest.startsWith('(?i:')) {
      prefix = '(?i:';
      emitted = '(?:';
      fold = true;
    } else if (rest.startsWith('(?-i:')) {
      prefix = '(?-i:';
      emitted = '(?:';
      fold = false;
    } else {
      const m = /^\((?:\?(?::|=|!|<=|<!|<[A-Za-z_]\w*>))?/.exec(rest)!;
      prefix = m[0];
      emitted = m[0];
      if (prefix === '(' && rest.startsWith('(?')) this.fail(`unsupported group syntax "${rest.slice(0, 4)}"`);
    }
    this.foldStack.push(this.fold);
    this.fold = fold;
    this.out += emitted;
    this.lastWasQuantifier = true; // nothing to quantify right after "("
    this.i += prefix.length;
  }

  /** Reads one escape starting at the backslash; returns its JavaScript text. */
  private escape(inClass: boolean): string {
    const src = this.src;
    const next = src[this.i + 1];
    if (next === undefined) this.fail('trailing backslash');
    const braced = /^\\([pPx])\{([^}]*)\}/.exec(src.slice(this.i));
    if (braced) {
      this.i += braced[0].length;
      if (braced[1] === 'x') return `\\u{${braced[2]}}`;
      return unicodeProperty(braced[1] === 'P', braced[2]);
    }
    const fixed = /^\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4})/.exec(src.slice(this.i));
    if (fixed) {
      this.i += fixed[0].length;
      return fixed[0];
    }
    const table = inClass ? CLASS_ESCAPES : OUTSIDE_ESCAPES;
    this.i += 2;
    if (Object.hasOwn(table, next)) return table[next];
    if (/[A-Za-z0-9]/.test(next)) {
      this.i -= 2;
      this.fail(`unsupported escape \\${next}${inClass ? ' in a character class' : ''}`);
    }
    if (SYNTAX_CHARS.includes(next) || (inClass && next === '-')) return `\\${next}`;
    return next;
  }

  private charClass(): string {
    const src = this.src;
    const start = this.i;
    this.i++;
    let body = '';
    if (src[this.i] === '^') {
      body = '^';
      this.i++;
    }
    let first = true;
    while (true) {
      if (this.i >= src.length) {
        this.i = start;
        this.fail('unterminated character class');
      }
      const c = String.fromCodePoint(src.codePointAt(this.i)!);
      if (c === ']' && !first) break;
      if (c === ']' || c === '[') this.fail(`nested or empty character class`);
      if (src.startsWith('&&', this.i)) this.fail('character class intersection');
      first = false;
      if (c === '\\') {
        body += this.escape(true);
        continue;
      }
      this.i += c.length;
      if (this.fold && isAsciiLetter(c)) {
        if (src[this.i] === '-' && src[this.i + 1] !== ']') {
          // A range folds as a whole only when both ends are letters of the same case.
          const end = src[this.i + 1];
          if (!isAsciiLetter(end) || (c <= 'Z') !== (end <= 'Z')) this.fail('mixed range in a case-insensitive class');
          this.i += 2;
          body += `${c}-${end}${otherCase(c)}-${otherCase(end)}`;
        } else {
          body += c + otherCase(c);
        }
        continue;
      }
      body += c;
    }
    this.i++;
    return `[${body}]`;
  }
}

/** Translates an Oniguruma pattern to JavaScript source for a RegExp with the `u` flag. */
export function translateOnigPattern(pattern: string): string {
  return new Translator(pattern).run();
}

/** Compiles an Oniguruma pattern into a global unicode RegExp. */
export function compileOnigPattern(pattern: string): RegExp {
  const source = translateOnigPattern(pattern);
  try {
    return new RegExp(source, 'gu');
  } catch (err) {
    throw new Error(`cannot compile regex /${pattern}/ (as /${source}/): ${(err as Error).message}`);
  }
}

/** A literal string as a global unicode RegExp (Split patterns given as `{"String": …}`). */
export function literalPattern(text: string): RegExp {
  return new RegExp(text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'), 'gu');
}
