// The parser for model-written answers. Completions are untrusted text, so nothing here ever reaches
// eval/Function: a bounded tokenizer and recursive-descent parser build a small tree, and BigInt
// arithmetic evaluates it exactly. Division is integer-exact: every `/` must divide without remainder,
// otherwise the expression has no value (the Countdown rule; no rationals, no rounding).

export type BinaryOp = '+' | '-' | '*' | '/';

export type Expr =
  | { kind: 'num'; value: bigint; text: string }
  | { kind: 'neg'; arg: Expr }
  | { kind: 'bin'; op: BinaryOp; left: Expr; right: Expr };

export interface ExprLimits {
  /** Longest accepted input, in UTF-16 code units; also bounds every BigInt the evaluator can build. */
  maxChars: number;
  /** Deepest nesting of parentheses and unary signs; keeps recursion far from the stack limit. */
  maxDepth: number;
}

export const DEFAULT_LIMITS: ExprLimits = { maxChars: 1000, maxDepth: 64 };

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

// Models trained on web text write typographic operators; they mean the ASCII ones. Anything else
// (letters, `x` for times, `^`, `.`, `=`) is rejected rather than guessed at.
const OPERATOR_ALIASES: Record<string, string> = {
  '\u2212': '-', // minus sign
  '\u2013': '-', // en dash
  '\uFE63': '-', // small hyphen-minus
  '\uFF0D': '-', // fullwidth hyphen-minus
  '\uFF0B': '+', // fullwidth plus
  '\u00D7': '*', // multiplication sign
  '\u22C5': '*', // dot operator
  '\u2217': '*', // asterisk operator
  '\uFF0A': '*', // fullwidth asterisk
  '\u00F7': '/', // division sign
  '\u2215': '/', // division slash
  '\uFF0F': '/', // fullwidth solidus
};

/** Maps typographic operator look-alikes to ASCII `+ - * /`; leaves everything else alone. */
function normalizeOperators(text: string): string {
  return text.replace(/[\u2212\u2013\uFE63\uFF0D\uFF0B\u00D7\u22C5\u2217\uFF0A\u00F7\u2215\uFF0F]/g, (c) => OPERATOR_ALIASES[c] ?? c);
}

type Token = { kind: 'num'; text: string; pos: number } | { kind: 'op'; text: string; pos: number };

class ExprError extends Error {}

function describe(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return code >= 0x20 && code < 0x7f ? `'${c}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c >= '0' && c <= '9') {
      const start = i;
      while (i < text.length && (text[i] as string) >= '0' && (text[i] as string) <= '9') i++;
      tokens.push({ kind: 'num', text: text.slice(start, i), pos: start });
    } else if ('+-*/()'.includes(c)) {
      tokens.push({ kind: 'op', text: c, pos: i });
      i++;
    } else {
      throw new ExprError(`unexpected character ${describe(String.fromCodePoint(text.codePointAt(i) ?? 0))} at ${i}`);
    }
  }
  return tokens;
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly maxDepth: number,
  ) {}

  parse(): Expr {
    if (this.tokens.length === 0) throw new ExprError('empty expression');
    const e = this.sum(0);
    const rest = this.tokens[this.i];
    if (rest) throw new ExprError(`unexpected '${rest.text}' at ${rest.pos}`);
    return e;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private sum(depth: number): Expr {
    let left = this.product(depth);
    for (let t = this.peek(); t?.kind === 'op' && (t.text === '+' || t.text === '-'); t = this.peek()) {
      this.i++;
      left = { kind: 'bin', op: t.text as BinaryOp, left, right: this.product(depth) };
    }
    return left;
  }

  private product(depth: number): Expr {
    let left = this.unary(depth);
    for (let t = this.peek(); t?.kind === 'op' && (t.text === '*' || t.text === '/'); t = this.peek()) {
      this.i++;
      left = { kind: 'bin', op: t.text as BinaryOp, left, right: this.unary(depth) };
    }
    return left;
  }

  private unary(depth: number): Expr {
    if (depth > this.maxDepth) throw new ExprError(`nested deeper than ${this.maxDepth} levels`);
    const t = this.peek();
    if (!t) throw new ExprError('expression ends too early');
    if (t.kind === 'num') {
      this.i++;
      return { kind: 'num', value: BigInt(t.text), text: t.text };
    }
    if (t.text === '-' || t.text === '+') {
      this.i++;
      const arg = this.unary(depth + 1);
      return t.text === '-' ? { kind: 'neg', arg } : arg;
    }
    if (t.text === '(') {
      this.i++;
      const inner = this.sum(depth + 1);
      const close = this.peek();
      if (close?.text !== ')') throw new ExprError(close ? `expected ')' at ${close.pos}` : "missing ')'");
      this.i++;
      return inner;
    }
    throw new ExprError(`unexpected '${t.text}' at ${t.pos}`);
  }
}

/** Parses `+ - * /`, parentheses, unary signs and non-negative integer literals. */
export function parseExpr(text: string, limits: ExprLimits = DEFAULT_LIMITS): Result<Expr> {
  if (text.length > limits.maxChars) return { ok: false, error: `longer than ${limits.maxChars} characters` };
  try {
    return { ok: true, value: new Parser(tokenize(normalizeOperators(text)), limits.maxDepth).parse() };
  } catch (err) {
    if (err instanceof ExprError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Exact value; fails on division by zero and on any division that leaves a remainder. */
export function evaluate(e: Expr): Result<bigint> {
  try {
    return { ok: true, value: evalNode(e) };
  } catch (err) {
    if (err instanceof ExprError) return { ok: false, error: err.message };
    throw err;
  }
}

function evalNode(e: Expr): bigint {
  switch (e.kind) {
    case 'num':
      return e.value;
    case 'neg':
      return -evalNode(e.arg);
    case 'bin': {
      const a = evalNode(e.left);
      const b = evalNode(e.right);
      switch (e.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          if (b === 0n) throw new ExprError('division by zero');
          if (a % b !== 0n) throw new ExprError(`inexact division ${abbreviate(a)} / ${abbreviate(b)}`);
          return a / b;
      }
    }
  }
}

/** Every integer literal in the expression, left to right. */
export function literals(e: Expr): bigint[] {
  const out: bigint[] = [];
  const walk = (n: Expr): void => {
    if (n.kind === 'num') out.push(n.value);
    else if (n.kind === 'neg') walk(n.arg);
    else {
      walk(n.left);
      walk(n.right);
    }
  };
  walk(e);
  return out;
}

/**
 * A plain integer answer: optional sign (`+`, `-`, or a typographic minus), digits, optionally grouped
 * in threes by commas ("1,234,567" but not "12,34"), surrounding whitespace ignored. Nothing else —
 * not an expression, not a decimal point, not "NaN".
 */
export function parseInteger(text: string, maxChars = DEFAULT_LIMITS.maxChars): Result<bigint> {
  if (text.length > maxChars) return { ok: false, error: `longer than ${maxChars} characters` };
  const m = /^([+-]?)(\d+|\d{1,3}(?:,\d{3})+)$/.exec(normalizeOperators(text).trim());
  if (!m) return { ok: false, error: 'not an integer' };
  const magnitude = BigInt((m[2] as string).replaceAll(',', ''));
  return { ok: true, value: m[1] === '-' ? -magnitude : magnitude };
}

/** A BigInt for messages: adversarial answers can be hundreds of digits long. */
export function abbreviate(n: bigint): string {
  const s = n.toString();
  return s.length <= 40 ? s : `${s.slice(0, 12)}…(${s.replace('-', '').length} digits)…${s.slice(-6)}`;
}
