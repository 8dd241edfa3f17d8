// Byte-level plumbing shared by the BPE model, the trainer and the decoder.
//
// GPT-2-style byte-level BPE stores every token as a string of printable stand-in characters, one
// per byte, so that vocab files stay valid JSON text: bytes that are already printable (and not a
// space) stand for themselves, the other 68 are shifted to U+0100 and up in byte order.

function buildByteToChar(): string[] {
  const chars = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : 0x100 + shifted++);
  }
  return chars;
}

/** Stand-in character for each byte value. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Inverse of BYTE_TO_CHAR, by UTF-16 code unit; -1 where the code unit stands for no byte. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x200).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => {
    table[c.charCodeAt(0)] = b;
  });
  return table;
})();

/** The byte-level token string for raw bytes. */
export function bytesToTokenString(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/**
 * The bytes a token string stands for, or null when some character is not a byte stand-in (such a
 * token is decoded as its own UTF-8, which is what the reference implementation does too).
 */
export function tokenStringToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

/**
 * UTF-8 encoder into a growable scratch buffer, so the encoding hot loop does not allocate per word.
 * A lone surrogate becomes EF BF BD (U+FFFD), exactly as TextEncoder does.
 */
export class Utf8Scratch {
  buf = new Uint8Array(256);

  /** Encodes `text` and returns the number of bytes written to `buf`. */
  encode(text: string): number {
    const n = text.length;
    if (this.buf.length < n * 3) this.buf = new Uint8Array(n * 3 + 64);
    const buf = this.buf;
    let len = 0;
    for (let i = 0; i < n; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        buf[len++] = c;
      } else if (c < 0x800) {
        buf[len++] = 0xc0 | (c >> 6);
        buf[len++] = 0x80 | (c & 63);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          buf[len++] = 0xf0 | (c >> 18);
          buf[len++] = 0x80 | ((c >> 12) & 63);
          buf[len++] = 0x80 | ((c >> 6) & 63);
          buf[len++] = 0x80 | (c & 63);
        } else {
          buf[len++] = 0xef;
          buf[len++] = 0xbf;
          buf[len++] = 0xbd;
        }
      } else {
        buf[len++] = 0xe0 | (c >> 12);
        buf[len++] = 0x80 | ((c >> 6) & 63);
        buf[len++] = 0x80 | (c & 63);
      }
    }
    return len;
  }
}
